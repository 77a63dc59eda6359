//! UCloud request signatures: lowercase hex SHA1 of every parameter except
//! `Signature`, sorted by key in byte order, written as `key + value` with no
//! separators, followed by the private key.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::params::Params;

/// The signature UCloud's SDKs compute for `params` with `private_key`.
pub fn sign(params: &Params, private_key: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(params.signing_string().as_bytes());
    hasher.update(private_key.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether `signature` (hex, any case) is the one `params` should carry. The
/// comparison takes the same time wherever the first difference is.
pub fn verify(params: &Params, private_key: &str, signature: &str) -> bool {
    let expected = sign(params, private_key);
    let given = signature.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_test_vector_signs_as_ucloud_does() {
        let params = Params::from_pairs([
            ("Action", "DescribeUHostInstance"),
            ("Region", "cn-bj2"),
            ("Limit", "10"),
            ("PublicKey", "ucloudsomeone@example.com1296235120854146120"),
        ]);
        let private = "46f09bb9fab4f12dfc160dae12273d5332b5debe";
        assert_eq!(
            sign(&params, private),
            "cba5cf5ec4d4233d206b1b54951e3787350a642f"
        );
    }

    #[test]
    fn signature_parameter_is_not_signed_and_case_is_ignored() {
        let mut params = Params::from_pairs([("Action", "X"), ("PublicKey", "pk")]);
        let sig = sign(&params, "secret");
        params.push("Signature", sig.clone());
        assert!(verify(&params, "secret", &sig.to_uppercase()));
        assert!(!verify(&params, "other", &sig));
    }
}
