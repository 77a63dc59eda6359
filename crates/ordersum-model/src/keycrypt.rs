//! API private keys at rest: AES-256-GCM with keys from the environment.
//!
//! `api_keys.private_key` is shared with the billing system, so the column
//! keeps its type and plain-text rows stay readable: a stored value is either
//! the private key itself, or `enc:v1:<key id>:<base64(nonce ||
//! ciphertext-and-tag)>` with a random 96-bit nonce per value. The public key of the row is
//! the associated data, so a ciphertext copied onto another row does not
//! decrypt. Keys come from `ORDERSUM_KEY_ENCRYPTION_KEYS` as comma-separated
//! `id:key` entries (32 bytes in base64 or hex): the first one encrypts, the
//! others only decrypt, which is how keys are rotated.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use rand::RngCore;
pub use secrecy::{ExposeSecret, SecretString};

/// What every encrypted value starts with (the format's version included).
pub const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_KEY_ID_LEN: usize = 32;

/// Why a value could not be sealed or opened, or the keys not read. The
/// messages never carry key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyCryptError {
    #[error("no key encryption key is configured (ORDERSUM_KEY_ENCRYPTION_KEYS)")]
    NotConfigured,
    #[error("the value is encrypted under key id {0:?}, which is not configured")]
    UnknownKeyId(String),
    #[error("the encrypted value is malformed")]
    Malformed,
    #[error("the encrypted value does not decrypt: wrong key, another row's value, or tampered")]
    Decrypt,
    #[error("ORDERSUM_KEY_ENCRYPTION_KEYS: {0}")]
    BadKeys(String),
}

/// How a value is stored in `api_keys.private_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredKey<'a> {
    /// No `enc:` prefix: the private key in plain text.
    Plain(&'a str),
    /// Encrypted under the key named `key_id`.
    Encrypted { key_id: &'a str, payload: &'a str },
}

impl<'a> StoredKey<'a> {
    /// Reads a stored value; `enc:` followed by anything but the v1 form is
    /// malformed rather than plain, so a damaged value is never used as a key.
    pub fn parse(stored: &'a str) -> Result<Self, KeyCryptError> {
        if !stored.starts_with("enc:") {
            return Ok(StoredKey::Plain(stored));
        }
        let rest = stored
            .strip_prefix(PREFIX)
            .ok_or(KeyCryptError::Malformed)?;
        let (key_id, payload) = rest.split_once(':').ok_or(KeyCryptError::Malformed)?;
        if !valid_key_id(key_id) {
            return Err(KeyCryptError::Malformed);
        }
        Ok(StoredKey::Encrypted { key_id, payload })
    }
}

/// The configured keys: the first encrypts, every one decrypts. Without any,
/// values are stored in plain text and only plain values can be read.
#[derive(Clone, Default)]
pub struct KeyCipher {
    keys: Arc<Vec<(String, Aes256Gcm)>>,
}

impl fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeyCipher").field("key_ids", &ids).finish()
    }
}

impl KeyCipher {
    /// Reads `id:key,id:key,…` (the key 32 bytes as base64 or 64 hex digits;
    /// blanks around entries ignored). An empty text configures nothing.
    pub fn parse(spec: &str) -> Result<Self, KeyCryptError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for (index, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let bad = |what: &str| KeyCryptError::BadKeys(format!("entry {}: {what}", index + 1));
            let (id, material) = entry.split_once(':').ok_or_else(|| bad("not id:key"))?;
            let id = id.trim();
            if !valid_key_id(id) {
                return Err(bad(
                    "the id must be 1-32 letters, digits, '-' or '_' (no ':')",
                ));
            }
            if keys.iter().any(|(known, _)| known == id) {
                return Err(bad("the id is given twice"));
            }
            let bytes = decode_key(material.trim())
                .ok_or_else(|| bad("the key must be 32 bytes as base64 or 64 hex digits"))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| bad("bad key length"))?;
            keys.push((id.to_owned(), cipher));
        }
        Ok(KeyCipher {
            keys: Arc::new(keys),
        })
    }

    /// Whether at least one key is configured (new values are encrypted).
    pub fn is_configured(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The id new values are encrypted under.
    pub fn current_key_id(&self) -> Option<&str> {
        self.keys.first().map(|(id, _)| id.as_str())
    }

    /// `private_key` encrypted under the current key for the row of
    /// `public_key`; `NotConfigured` without keys.
    pub fn seal(&self, public_key: &str, private_key: &str) -> Result<String, KeyCryptError> {
        let (id, cipher) = self.keys.first().ok_or(KeyCryptError::NotConfigured)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: private_key.as_bytes(),
                    aad: public_key.as_bytes(),
                },
            )
            .map_err(|_| KeyCryptError::Decrypt)?;
        let mut payload = Vec::with_capacity(NONCE_LEN + sealed.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{id}:{}", STANDARD.encode(payload)))
    }

    /// What to store for a new key: sealed when keys are configured, else
    /// the plain text.
    pub fn store_form(&self, public_key: &str, private_key: &str) -> Result<String, KeyCryptError> {
        if self.is_configured() {
            self.seal(public_key, private_key)
        } else {
            Ok(private_key.to_owned())
        }
    }

    /// The private key of the row of `public_key` from its stored form: plain
    /// text as is, an encrypted value decrypted with the key it names.
    pub fn open(&self, public_key: &str, stored: &str) -> Result<SecretString, KeyCryptError> {
        let (key_id, payload) = match StoredKey::parse(stored)? {
            StoredKey::Plain(plain) => return Ok(SecretString::from(plain)),
            StoredKey::Encrypted { key_id, payload } => (key_id, payload),
        };
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .ok_or_else(|| KeyCryptError::UnknownKeyId(key_id.to_owned()))?;
        let bytes = STANDARD
            .decode(payload)
            .map_err(|_| KeyCryptError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(KeyCryptError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyCryptError::Malformed)?;
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: public_key.as_bytes(),
                },
            )
            .map_err(|_| KeyCryptError::Decrypt)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| KeyCryptError::Malformed)
    }

    /// Whether `stored` should be rewritten under the current key: plain
    /// text, or encrypted under another key id. False without keys.
    pub fn needs_rewrite(&self, stored: &str) -> bool {
        let Some(current) = self.current_key_id() else {
            return false;
        };
        match StoredKey::parse(stored) {
            Ok(StoredKey::Plain(_)) => true,
            Ok(StoredKey::Encrypted { key_id, .. }) => key_id != current,
            Err(_) => false,
        }
    }

    /// The prefix every value sealed under the current key starts with.
    pub fn current_prefix(&self) -> Option<String> {
        self.current_key_id().map(|id| format!("{PREFIX}{id}:"))
    }
}

/// A fresh random key entry for `ORDERSUM_KEY_ENCRYPTION_KEYS`: `id:base64`.
pub fn generate_key_entry(id: &str) -> Result<SecretString, KeyCryptError> {
    if !valid_key_id(id) {
        return Err(KeyCryptError::BadKeys(
            "the id must be 1-32 letters, digits, '-' or '_'".into(),
        ));
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let entry = SecretString::from(format!("{id}:{}", STANDARD.encode(key)));
    key.fill(0);
    Ok(entry)
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_key(material: &str) -> Option<Vec<u8>> {
    let bytes = if material.len() == 64 && material.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(material).ok()?
    } else {
        STANDARD
            .decode(material)
            .or_else(|_| STANDARD_NO_PAD.decode(material))
            .ok()?
    };
    (bytes.len() == 32).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2_HEX: &str = "k2:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    const PRIVATE: &str = "46f09bb9fab4f12dfc160dae12273d5332b5debe";

    fn cipher(spec: &str) -> KeyCipher {
        KeyCipher::parse(spec).expect("valid keys")
    }

    fn open(cipher: &KeyCipher, public: &str, stored: &str) -> Result<String, KeyCryptError> {
        cipher
            .open(public, stored)
            .map(|s| s.expose_secret().to_owned())
    }

    #[test]
    fn a_sealed_key_opens_to_itself_and_hides_the_plain_text() {
        let keys = cipher(K1);
        let sealed = keys.seal("pk-1", PRIVATE).expect("sealed");
        assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
        assert!(!sealed.contains(PRIVATE));
        assert_eq!(open(&keys, "pk-1", &sealed), Ok(PRIVATE.to_owned()));
        // A random nonce per value: the same key seals differently each time.
        assert_ne!(sealed, keys.seal("pk-1", PRIVATE).expect("sealed"));
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let keys = cipher(K1);
        let sealed = keys.seal("pk-1", PRIVATE).expect("sealed");
        let (head, payload) = sealed.rsplit_once(':').expect("payload");
        let mut bytes = STANDARD.decode(payload).expect("base64");
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 1;
            let tampered = format!("{head}:{}", STANDARD.encode(&bytes));
            assert_eq!(open(&keys, "pk-1", &tampered), Err(KeyCryptError::Decrypt));
            bytes[i] ^= 1;
        }
        let short = format!("{head}:{}", STANDARD.encode(&bytes[..20]));
        assert_eq!(open(&keys, "pk-1", &short), Err(KeyCryptError::Malformed));
        assert_eq!(
            open(&keys, "pk-1", "enc:v1:k1:***"),
            Err(KeyCryptError::Malformed)
        );
        assert_eq!(
            open(&keys, "pk-1", "enc:v2:x"),
            Err(KeyCryptError::Malformed)
        );
    }

    #[test]
    fn a_value_moved_to_another_row_is_refused() {
        let keys = cipher(K1);
        let sealed = keys.seal("pk-1", PRIVATE).expect("sealed");
        assert_eq!(open(&keys, "pk-2", &sealed), Err(KeyCryptError::Decrypt));
    }

    #[test]
    fn plain_values_pass_through_with_or_without_keys() {
        assert_eq!(open(&cipher(K1), "pk", PRIVATE), Ok(PRIVATE.to_owned()));
        let none = KeyCipher::default();
        assert_eq!(open(&none, "pk", PRIVATE), Ok(PRIVATE.to_owned()));
        assert_eq!(none.store_form("pk", PRIVATE), Ok(PRIVATE.to_owned()));
        assert_eq!(none.seal("pk", PRIVATE), Err(KeyCryptError::NotConfigured));
        assert!(!none.needs_rewrite(PRIVATE));
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let old = cipher(K1);
        let rotated = cipher(&format!("{K2_HEX}, {K1}"));
        assert_eq!(rotated.current_key_id(), Some("k2"));
        let under_old = old.seal("pk", PRIVATE).expect("sealed");
        assert!(rotated.needs_rewrite(&under_old));
        assert_eq!(open(&rotated, "pk", &under_old), Ok(PRIVATE.to_owned()));
        let under_new = rotated.store_form("pk", PRIVATE).expect("sealed");
        assert!(under_new.starts_with("enc:v1:k2:"));
        assert!(!rotated.needs_rewrite(&under_new));
        assert!(rotated.needs_rewrite(PRIVATE));
        // The old key alone cannot read what the new one sealed.
        assert_eq!(
            open(&old, "pk", &under_new),
            Err(KeyCryptError::UnknownKeyId("k2".into()))
        );
    }

    #[test]
    fn bad_key_settings_are_refused_without_echoing_the_material() {
        for spec in [
            "k1",
            "k1:c2hvcnQ=",
            "k:1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ] {
            let err = KeyCipher::parse(spec).expect_err(spec);
            assert!(!err.to_string().contains("AAEC"), "{err}");
            assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        }
        assert!(!KeyCipher::parse(" ").expect("empty").is_configured());
    }

    #[test]
    fn secrets_never_print_in_debug() {
        let shown = format!("{:?}", cipher(K1));
        assert!(!shown.contains("AAEC"), "{shown}");
        assert!(shown.contains("k1"), "{shown}");
        let entry = generate_key_entry("k9").expect("entry");
        assert!(!format!("{entry:?}").contains("k9:"));
        let fresh = cipher(entry.expose_secret());
        assert_eq!(fresh.current_key_id(), Some("k9"));
    }
}
