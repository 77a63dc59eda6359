//! `DownloadOrderSummary`: its parameters, their validation and the
//! normalised form that is stored with the job and hashed for dedup.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::params::Params;
use crate::retcode::ApiError;

/// Products whose orders a summary can hold.
pub const PRODUCT_CODES: [&str; 2] = ["modelverse", "sandbox"];

/// Bounds the operator sets on requests.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest `EndTime - StartTime`, in seconds.
    pub max_span_secs: i64,
    /// Most items in one list parameter.
    pub max_list_items: usize,
    /// Longest item of a list parameter, in characters.
    pub max_item_chars: usize,
    /// Time zone of the workbook's times when the request names none.
    pub default_time_zone: String,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_span_secs: 366 * 24 * 3600,
            max_list_items: 1000,
            max_item_chars: 256,
            default_time_zone: "UTC".to_owned(),
        }
    }
}

/// A validated `DownloadOrderSummary`: lists without duplicates, sorted, so
/// that equal requests compare (and hash) equal whatever their encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryRequest {
    /// Window start, Unix seconds, inclusive, on the order's billing start.
    pub start_time: i64,
    /// Window end, Unix seconds, exclusive.
    pub end_time: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pricing_units: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_types: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charge_types: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organization_ids: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pricing_skus: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_codes: Vec<String>,
    /// IANA time zone of the times in the workbook.
    pub time_zone: String,
}

impl SummaryRequest {
    /// Validates the parameters of a `DownloadOrderSummary` call: 220 for a
    /// missing required one, 230 for anything malformed or out of bounds.
    pub fn from_params(params: &Params, limits: &Limits) -> Result<Self, ApiError> {
        let start_time = required_time(params, "StartTime")?;
        let end_time = required_time(params, "EndTime")?;
        if end_time <= start_time || end_time - start_time > limits.max_span_secs {
            return Err(ApiError::bad("EndTime"));
        }
        let time_zone = match params.text("TimeZone")? {
            Some(zone) => canonical_time_zone(zone).ok_or_else(|| ApiError::bad("TimeZone"))?,
            None => limits.default_time_zone.clone(),
        };
        let product_codes = text_list(params, "ProductCodes", limits)?;
        if let Some(bad) = product_codes
            .iter()
            .find(|c| !PRODUCT_CODES.contains(&c.as_str()))
        {
            tracing::debug!(product_code = %bad, "unknown product code");
            return Err(ApiError::bad("ProductCodes"));
        }
        Ok(SummaryRequest {
            start_time,
            end_time,
            resource_ids: text_list(params, "ResourceIds", limits)?,
            model_ids: text_list(params, "ModelIds", limits)?,
            pricing_units: int_list(params, "PricingUnits", limits)?,
            order_types: int_list(params, "OrderTypes", limits)?,
            charge_types: int_list(params, "ChargeTypes", limits)?,
            organization_ids: int_list(params, "OrganizationIds", limits)?,
            regions: text_list(params, "Regions", limits)?,
            pricing_skus: text_list(params, "PricingSkus", limits)?,
            product_codes,
            time_zone,
        })
    }

    /// Hex SHA-256 of the normalised request: equal for requests that would
    /// produce the same file.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical))
    }
}

/// The canonical IANA name of `zone` (`asia/shanghai` → `Asia/Shanghai`).
pub fn canonical_time_zone(zone: &str) -> Option<String> {
    chrono_tz::Tz::from_str_insensitive(zone)
        .ok()
        .map(|tz| tz.name().to_owned())
}

fn required_time(params: &Params, key: &'static str) -> Result<i64, ApiError> {
    // Unix seconds from 1970 to 9999-12-31: anything else is not a time.
    params
        .int(key, 0, 253_402_300_799)?
        .ok_or(ApiError::MissingParam(key))
}

fn text_list(params: &Params, key: &str, limits: &Limits) -> Result<Vec<String>, ApiError> {
    normalised_list(params, key, limits, |item| Some(item.to_owned()))
}

fn int_list<T>(params: &Params, key: &str, limits: &Limits) -> Result<Vec<T>, ApiError>
where
    T: FromStr + Ord + Display + Clone,
{
    normalised_list(params, key, limits, |item| item.parse::<T>().ok())
}

/// The items of a list parameter, each trimmed, checked and converted, with
/// duplicates collapsed and sorted. The cap is on the items sent, duplicates
/// included: 50 000 copies of one region are as much work to read as 50 000
/// regions.
fn normalised_list<T: Ord>(
    params: &Params,
    key: &str,
    limits: &Limits,
    convert: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    let sent = params.list(key);
    if sent.len() > limits.max_list_items {
        return Err(ApiError::bad(key));
    }
    let mut items = BTreeSet::new();
    for raw in sent {
        let item = raw.trim();
        if item.is_empty() || item.chars().count() > limits.max_item_chars {
            return Err(ApiError::bad(key));
        }
        items.insert(convert(item).ok_or_else(|| ApiError::bad(key))?);
    }
    Ok(items.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Result<SummaryRequest, ApiError> {
        SummaryRequest::from_params(
            &Params::from_pairs(pairs.iter().copied()),
            &Limits::default(),
        )
    }

    #[test]
    fn lists_are_deduplicated_and_sorted_so_equal_requests_hash_equal() {
        let a = request(&[
            ("StartTime", "100"),
            ("EndTime", "200"),
            ("Regions.0", "cn-sh2"),
            ("Regions.1", "cn-bj2"),
            ("Regions.2", "cn-sh2"),
            ("OrderTypes.0", "2"),
            ("OrderTypes.1", "1"),
        ])
        .expect("valid");
        let b = request(&[
            ("StartTime", "100"),
            ("EndTime", "200"),
            ("Regions", "cn-bj2"),
            ("Regions", "cn-sh2"),
            ("OrderTypes.N", "1"),
            ("OrderTypes.N", "2"),
        ])
        .expect("valid");
        assert_eq!(a.regions, vec!["cn-bj2", "cn-sh2"]);
        assert_eq!(a.order_types, vec![1, 2]);
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
    }

    #[test]
    fn time_zone_is_part_of_the_hash_and_canonicalised() {
        let utc = request(&[("StartTime", "100"), ("EndTime", "200")]).expect("valid");
        let sh = request(&[
            ("StartTime", "100"),
            ("EndTime", "200"),
            ("TimeZone", "asia/shanghai"),
        ])
        .expect("valid");
        assert_eq!(utc.time_zone, "UTC");
        assert_eq!(sh.time_zone, "Asia/Shanghai");
        assert_ne!(utc.hash(), sh.hash());
    }

    #[test]
    fn the_list_cap_counts_items_sent_duplicates_included() {
        let mut pairs = vec![("StartTime", "1".to_owned()), ("EndTime", "2".to_owned())];
        let keys: Vec<String> = (0..=1000).map(|i| format!("Regions.{i}")).collect();
        pairs.extend(keys.iter().map(|k| (k.as_str(), "cn-bj2".to_owned())));
        let params = Params::from_pairs(pairs.iter().map(|(k, v)| (*k, v.clone())));
        assert_eq!(
            SummaryRequest::from_params(&params, &Limits::default()),
            Err(ApiError::bad("Regions"))
        );
        let at_cap = Params::from_pairs(pairs[..1002].iter().map(|(k, v)| (*k, v.clone())));
        let request = SummaryRequest::from_params(&at_cap, &Limits::default()).expect("at cap");
        assert_eq!(request.regions, vec!["cn-bj2"]);
    }

    #[test]
    fn product_codes_outside_the_enum_are_not_available() {
        let err = request(&[
            ("StartTime", "1"),
            ("EndTime", "2"),
            ("ProductCodes.0", "uhost"),
        ]);
        assert_eq!(err, Err(ApiError::bad("ProductCodes")));
    }
}
