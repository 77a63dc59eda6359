//! UCloud signatures: verifying arbitrary params, keys and signatures never
//! panics; what `sign` produces verifies (in any case, with the `Signature`
//! param present), and any other signature is refused.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ordersum_model::{Params, signature};

fuzz_target!(|input: (Vec<(String, String)>, String, String)| {
    let (pairs, private_key, given) = input;
    let mut params = Params::from_pairs(pairs);
    let accepted = signature::verify(&params, &private_key, &given);

    let expected = signature::sign(&params, &private_key);
    assert_eq!(expected.len(), 40);
    assert_eq!(
        accepted,
        given.trim().to_ascii_lowercase() == expected,
        "verify must accept exactly the signature sign gives"
    );
    assert!(signature::verify(&params, &private_key, &expected));
    assert!(signature::verify(
        &params,
        &private_key,
        &expected.to_ascii_uppercase()
    ));
    // The Signature param itself is not signed.
    params.push("Signature", expected.clone());
    assert!(signature::verify(&params, &private_key, &expected));
});
