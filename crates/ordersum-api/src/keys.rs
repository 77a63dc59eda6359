//! API keys, cached in the process for a short time: every call needs its
//! key, and a Postgres round trip per call is most of a poll's cost. Only
//! keys that exist are cached (bounded in number and in age), so a flood of
//! made-up keys neither grows the cache nor evicts real keys, a key created
//! after a failed call works at once, and a key disabled in `api_keys` is
//! refused everywhere within the TTL. Private keys stored encrypted are
//! decrypted after the lookup.

use std::time::Duration;

use moka::future::Cache;
use ordersum_model::keycrypt::{ExposeSecret, KeyCipher};
use ordersum_model::pool::Db;
use ordersum_model::store;
use ordersum_model::store::keys::ApiKey;

/// Longest `PublicKey` looked up; longer ones are unknown without a lookup.
/// `ordersum keys create` makes 28-byte keys, UCloud's are under 100.
pub const MAX_PUBLIC_KEY_BYTES: usize = 128;

#[derive(Debug)]
pub struct KeyCache {
    /// `None` when caching is off (TTL 0).
    found: Option<Cache<String, ApiKey>>,
    cipher: KeyCipher,
}

impl KeyCache {
    /// A cache keeping at most `capacity` found keys for `ttl` each; a zero
    /// TTL or capacity disables it. `cipher` decrypts private keys stored
    /// encrypted.
    pub fn new(ttl: Duration, capacity: u64, cipher: KeyCipher) -> Self {
        let found = (!ttl.is_zero() && capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        });
        KeyCache { found, cipher }
    }

    /// What seals and opens secrets at rest (also webhook secrets).
    pub fn cipher(&self) -> &KeyCipher {
        &self.cipher
    }

    /// The key `public_key` names, if any. Over-long keys are not looked up.
    pub async fn get(&self, pool: &Db, public_key: &str) -> Result<Option<ApiKey>, sqlx::Error> {
        if public_key.len() > MAX_PUBLIC_KEY_BYTES {
            return Ok(None);
        }
        if let Some(hit) = self.cached(public_key).await {
            return Ok(Some(hit));
        }
        let key = store::keys::find_api_key(pool, public_key).await?;
        let key = key.map(|key| self.decrypt(key)).transpose()?;
        if let (Some(cache), Some(key)) = (&self.found, &key) {
            cache.insert(public_key.to_owned(), key.clone()).await;
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

    async fn cached(&self, public_key: &str) -> Option<ApiKey> {
        self.found.as_ref()?.get(public_key).await
    }

    /// Whether `public_key` is cached now.
    pub async fn contains(&self, public_key: &str) -> bool {
        self.cached(public_key).await.is_some()
    }

    /// Keys cached now (after pending evictions are applied).
    pub async fn entry_count(&self) -> u64 {
        match &self.found {
            Some(cache) => {
                cache.run_pending_tasks().await;
                cache.entry_count()
            }
            None => 0,
        }
    }
}
