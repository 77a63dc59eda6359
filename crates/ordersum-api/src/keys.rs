//! API keys, cached in the process for a short time: every call needs its
//! key, and a Postgres round trip per call is most of a poll's cost. A key
//! disabled in `api_keys` is refused everywhere within the TTL. Private keys
//! stored encrypted are decrypted after the lookup.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use ordersum_model::keycrypt::{ExposeSecret, KeyCipher};
use ordersum_model::repo::{self, ApiKey};
use sqlx::PgPool;

/// Most keys kept; past that the cache starts over.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    cipher: KeyCipher,
    entries: RwLock<HashMap<String, (Option<ApiKey>, Instant)>>,
}

impl KeyCache {
    /// A cache keeping lookups (found or not) for `ttl`; zero disables it.
    /// `cipher` decrypts private keys stored encrypted.
    pub fn new(ttl: Duration, cipher: KeyCipher) -> Self {
        KeyCache {
            ttl,
            cipher,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The key `public_key` names, if any.
    pub async fn get(
        &self,
        pool: &PgPool,
        public_key: &str,
    ) -> Result<Option<ApiKey>, sqlx::Error> {
        if let Some(hit) = self.cached(public_key) {
            return Ok(hit);
        }
        let key = repo::find_api_key(pool, public_key).await?;
        let key = key.map(|key| self.decrypt(key)).transpose()?;
        if !self.ttl.is_zero()
            && let Ok(mut entries) = self.entries.write()
        {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(public_key.to_owned(), (key.clone(), Instant::now()));
        }
        Ok(key)
    }

    /// The key with its private key in plain text; a value that does not
    /// decrypt is a decode error (an opaque 2000, the cause in the log).
    fn decrypt(&self, mut key: ApiKey) -> Result<ApiKey, sqlx::Error> {
        let plain = self
            .cipher
            .open(&key.public_key, &key.private_key)
            .map_err(|err| {
                sqlx::Error::Decode(format!("private key of {}: {err}", key.public_key).into())
            })?;
        key.private_key = plain.expose_secret().to_owned();
        Ok(key)
    }

    fn cached(&self, public_key: &str) -> Option<Option<ApiKey>> {
        let entries = self.entries.read().ok()?;
        let (key, at) = entries.get(public_key)?;
        (at.elapsed() < self.ttl).then(|| key.clone())
    }
}
