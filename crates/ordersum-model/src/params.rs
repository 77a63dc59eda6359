//! The parameters of one API call, whatever the encoding: a GET query string,
//! a form body or a JSON object. Keys keep their flattened UCloud spelling
//! (`ResourceIds.0`); a JSON array keeps its values under its own key.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::retcode::ApiError;

/// Key → what was given under it, sorted by key in byte order (the signing
/// order).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, Vec<Given>>,
}

/// One occurrence of a key: a plain value, or a JSON array (signed as its
/// values concatenated after one key, the Go SDK's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Given {
    One(String),
    Array(Vec<String>),
}

impl Given {
    fn values(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&String>, &[String]) = match self {
            Given::One(value) => (Some(value), &[]),
            Given::Array(items) => (None, items),
        };
        one.into_iter().chain(many).map(String::as_str)
    }
}

impl Params {
    /// Params from `key=value` pairs; a repeated key keeps every value.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut params = Params::default();
        for (key, value) in pairs {
            params.push(key, value);
        }
        params
    }

    /// Params from a `application/x-www-form-urlencoded` string (query or body).
    pub fn from_urlencoded(input: &[u8]) -> Self {
        Params::from_pairs(form_urlencoded::parse(input).into_owned())
    }

    /// Params from a JSON body, which must be an object. Scalars become their
    /// text (`10`, `true`); arrays keep their items in order; `null` is absent.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        let mut params = Params::default();
        for (key, value) in object {
            match value {
                Value::Null => {}
                Value::Array(items) => {
                    let items = items.iter().filter(|item| !item.is_null()).map(json_text);
                    params
                        .map
                        .entry(key)
                        .or_default()
                        .push(Given::Array(items.collect()));
                }
                other => params.push(key, json_text(&other)),
            }
        }
        Some(params)
    }

    /// Adds one value under `key`.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.map
            .entry(key.into())
            .or_default()
            .push(Given::One(value.into()));
    }

    /// Adds every parameter of `other` (the query string and the body of one
    /// request are one parameter set, signed together).
    pub fn extend(&mut self, other: Params) {
        for (key, values) in other.map {
            self.map.entry(key).or_default().extend(values);
        }
    }

    /// Whether no parameter was given at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The single value of `key`; `None` when absent, 230 when given twice
    /// or as an array.
    pub fn scalar(&self, key: &str) -> Result<Option<&str>, ApiError> {
        match self.map.get(key).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([Given::One(value)]) => Ok(Some(value.as_str())),
            Some(_) => Err(ApiError::bad(key)),
        }
    }

    /// A trimmed, non-empty single value of `key`, or `None`.
    pub fn text(&self, key: &str) -> Result<Option<&str>, ApiError> {
        Ok(self.scalar(key)?.map(str::trim).filter(|v| !v.is_empty()))
    }

    /// An integer parameter within `min..=max`; 230 when it is anything else.
    pub fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.text(key)? else {
            return Ok(None);
        };
        match raw.parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(ApiError::bad(key)),
        }
    }

    /// A required id parameter: 220 when absent, 230 when not a UUID.
    pub fn uuid(&self, key: &'static str) -> Result<uuid::Uuid, ApiError> {
        let raw = self.text(key)?.ok_or(ApiError::MissingParam(key))?;
        uuid::Uuid::parse_str(raw).map_err(|_| ApiError::bad(key))
    }

    /// The items of list `key` in UCloud's spellings: `Key.0`, `Key.1`, …
    /// ordered by index (gaps tolerated), then `Key` (repeated, or a JSON
    /// array), then the literal `Key.N`.
    pub fn list(&self, key: &str) -> Vec<&str> {
        let prefix = format!("{key}.");
        let mut indexed: Vec<(u64, &str)> = Vec::new();
        let mut plain: Vec<&str> = Vec::new();
        let mut literal: Vec<&str> = Vec::new();
        for (k, given) in self.map.range(key.to_owned()..) {
            let values = given.iter().flat_map(Given::values);
            if k == key {
                plain.extend(values);
                continue;
            }
            let Some(suffix) = k.strip_prefix(&prefix) else {
                if !k.starts_with(key) {
                    break;
                }
                continue;
            };
            if suffix == "N" {
                literal.extend(values);
            } else if let Ok(index) = suffix.parse::<u64>() {
                indexed.extend(values.map(|v| (index, v)));
            }
        }
        indexed.sort_by_key(|(index, _)| *index);
        indexed
            .into_iter()
            .map(|(_, v)| v)
            .chain(plain)
            .chain(literal)
            .collect()
    }

    /// What UCloud signs: every key but `Signature`, in byte order, each
    /// followed by its value (a JSON array's values concatenated), no
    /// separators. A key given twice is written twice, like any sorted pair.
    pub fn signing_string(&self) -> String {
        let mut out = String::new();
        for (key, given) in self.map.iter().filter(|(k, _)| *k != "Signature") {
            for occurrence in given {
                out.push_str(key);
                occurrence.values().for_each(|v| out.push_str(v));
            }
        }
        out
    }
}

fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_accepts_every_ucloud_spelling_in_index_order() {
        let params = Params::from_pairs([
            ("Regions.2", "c"),
            ("Regions.0", "a"),
            ("Regions", "d"),
            ("Regions.N", "e"),
            ("RegionsX", "ignored"),
            ("Regions.x", "ignored"),
        ]);
        assert_eq!(params.list("Regions"), vec!["a", "c", "d", "e"]);
    }

    #[test]
    fn json_arrays_and_numbers_become_params() {
        let params =
            Params::from_json(br#"{"Limit": 10, "Ids": ["a", 2], "X": null}"#).expect("object");
        assert_eq!(params.scalar("Limit"), Ok(Some("10")));
        assert_eq!(params.list("Ids"), vec!["a", "2"]);
        assert_eq!(params.scalar("X"), Ok(None));
        assert_eq!(params.signing_string(), "Idsa2Limit10");
    }

    #[test]
    fn a_repeated_key_is_signed_as_repeated_pairs() {
        let params = Params::from_pairs([("B", "2"), ("A", "x"), ("B", "1")]);
        assert_eq!(params.signing_string(), "AxB2B1");
    }

    #[test]
    fn json_body_that_is_not_an_object_is_refused() {
        assert!(Params::from_json(b"[1,2]").is_none());
        assert!(Params::from_json(b"{oops").is_none());
    }

    #[test]
    fn a_scalar_given_twice_is_not_available() {
        let params = Params::from_pairs([("StartTime", "1"), ("StartTime", "2")]);
        assert_eq!(params.scalar("StartTime"), Err(ApiError::bad("StartTime")));
    }
}
