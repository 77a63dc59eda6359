//! Request validation: `SummaryRequest::from_params` on arbitrary params
//! never panics, and an accepted request, written back as params (or read
//! back from the JSON stored with the job), validates to the same normalised
//! value and hash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ordersum_model::{Limits, Params, SummaryRequest};

fuzz_target!(|data: &[u8]| {
    // A form, or a JSON object when it starts with `{`: readable seeds.
    let params = if data.first() == Some(&b'{') {
        match Params::from_json(data) {
            Some(params) => params,
            None => return,
        }
    } else {
        Params::from_urlencoded(data)
    };
    let limits = Limits::default();
    let Ok(request) = SummaryRequest::from_params(&params, &limits) else {
        return;
    };
    let again = SummaryRequest::from_params(&as_params(&request), &limits)
        .expect("a normalised request validates");
    assert_eq!(again, request);
    assert_eq!(again.hash(), request.hash());

    let stored = serde_json::to_string(&request).expect("serialises");
    let loaded: SummaryRequest = serde_json::from_str(&stored).expect("deserialises");
    assert_eq!(loaded, request);
    assert_eq!(loaded.hash(), request.hash());
});

/// The request as the flattened params a client would send.
fn as_params(request: &SummaryRequest) -> Params {
    let mut params = Params::from_pairs([
        ("StartTime", request.start_time.to_string()),
        ("EndTime", request.end_time.to_string()),
        ("TimeZone", request.time_zone.clone()),
    ]);
    fn text<T: ToString>(items: &[T]) -> Vec<String> {
        items.iter().map(T::to_string).collect()
    }
    let lists: [(&str, Vec<String>); 9] = [
        ("ResourceIds", text(&request.resource_ids)),
        ("ModelIds", text(&request.model_ids)),
        ("PricingUnits", text(&request.pricing_units)),
        ("OrderTypes", text(&request.order_types)),
        ("ChargeTypes", text(&request.charge_types)),
        ("OrganizationIds", text(&request.organization_ids)),
        ("Regions", text(&request.regions)),
        ("PricingSkus", text(&request.pricing_skus)),
        ("ProductCodes", text(&request.product_codes)),
    ];
    for (key, items) in lists {
        for (index, item) in items.into_iter().enumerate() {
            params.push(format!("{key}.{index}"), item);
        }
    }
    params
}
