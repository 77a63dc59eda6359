//! The wire parsers: any query string, form body or JSON body parses
//! without panicking, and every accessor works on what comes out.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ordersum_model::Params;

/// Keys the API reads, lists and scalars.
const KEYS: [&str; 8] = [
    "Action",
    "Signature",
    "PublicKey",
    "StartTime",
    "ResourceIds",
    "Regions",
    "OrderTypes",
    "WaitSeconds",
];

fuzz_target!(|data: &[u8]| {
    let mut params = Params::from_urlencoded(data);
    exercise(&params);
    if let Some(json) = Params::from_json(data) {
        exercise(&json);
        // A query string and a body are one parameter set.
        params.extend(json);
        exercise(&params);
    }
});

fn exercise(params: &Params) {
    let signing = params.signing_string();
    for key in KEYS {
        let _ = params.scalar(key);
        let _ = params.text(key);
        let _ = params.int(key, 0, 60);
        if key != "Signature" {
            for item in params.list(key) {
                // Every listed item was given, so it is in the signed string.
                assert!(signing.contains(item));
            }
        }
    }
    let _ = params.is_empty();
}
