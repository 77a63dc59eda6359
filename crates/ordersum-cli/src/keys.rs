//! `ordersum keys`: API key pairs of a company, and their private keys at
//! rest (encrypted when `ORDERSUM_KEY_ENCRYPTION_KEYS` is set).

use std::io::Write;

use anyhow::{Context, bail};
use ordersum_model::keycrypt::{ExposeSecret, KeyCipher, StoredKey};
use ordersum_runtime::KeyEncryptionSettings;
use rand::CryptoRng;
use sqlx::{PgExecutor, PgPool};

/// `ordersum keys` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key pair for a company and print it as shell assignments
    /// (the private key is stored encrypted when encryption keys are set).
    Create {
        /// Company (tenant) the key acts for.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        company: i64,
    },
    /// Disable a key: requests signed with it are refused from now on.
    Disable {
        /// The key's public part.
        #[arg(long)]
        public_key: String,
    },
    /// Encrypt every plain-text private key with the current (first) key
    /// encryption key, and re-encrypt those under older keys (rotation).
    Encrypt {
        /// Rows rewritten per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch_size: u32,
    },
    /// Print a new random entry for ORDERSUM_KEY_ENCRYPTION_KEYS.
    NewEncryptionKey {
        /// The key's id: letters, digits, '-' or '_' (default: k and today's date).
        #[arg(long)]
        id: Option<String>,
    },
}

/// A new API key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// `osk-` and 24 lowercase letters and digits.
    pub public_key: String,
    /// 40 hex digits (160 random bits).
    pub private_key: String,
}

impl KeyPair {
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> KeyPair {
        let mut secret = [0u8; 20];
        rng.fill_bytes(&mut secret);
        KeyPair {
            public_key: format!("osk-{}", crate::random_lower_alnum(rng, 24)),
            private_key: hex::encode(secret),
        }
    }
}

pub async fn run(
    pool: &PgPool,
    command: KeysCommand,
    encryption: &KeyEncryptionSettings,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { company } => create(pool, company, &encryption.cipher()?).await,
        KeysCommand::Disable { public_key } => disable(pool, &public_key).await,
        KeysCommand::Encrypt { batch_size } => {
            encrypt(pool, &encryption.cipher()?, batch_size).await
        }
        KeysCommand::NewEncryptionKey { id } => print_new_encryption_key(&id),
    }
}

/// Prints exactly two lines on stdout, so `eval "$(ordersum keys create ...)"`
/// sets both variables.
async fn create(pool: &PgPool, company_id: i64, cipher: &KeyCipher) -> anyhow::Result<()> {
    let keys = create_key(pool, company_id, cipher).await?;
    tracing::info!(
        company_id,
        public_key = %keys.public_key,
        encrypted = cipher.is_configured(),
        "created API key"
    );
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ORDERSUM_PUBLIC_KEY={}", keys.public_key)
        .and_then(|()| writeln!(stdout, "ORDERSUM_PRIVATE_KEY={}", keys.private_key))
        .context("writing the keys to stdout")
}

/// A new key pair of `company_id`, its private key stored encrypted when
/// `cipher` has keys.
pub async fn create_key(
    pool: &PgPool,
    company_id: i64,
    cipher: &KeyCipher,
) -> anyhow::Result<KeyPair> {
    let keys = KeyPair::generate(&mut rand::rng());
    let stored = cipher.store_form(&keys.public_key, &keys.private_key)?;
    ordersum_model::store::keys::insert_api_key(pool, &keys.public_key, &stored, company_id)
        .await
        .context("inserting the API key")?;
    Ok(keys)
}

/// What `keys encrypt` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EncryptCounts {
    /// Plain-text rows now encrypted.
    pub encrypted: u64,
    /// Rows under an older key now under the current one.
    pub reencrypted: u64,
    /// Rows already under the current key (after the run).
    pub current: u64,
    /// Rows that do not decrypt with the configured keys (left as they are).
    pub failed: u64,
    /// Rows changed by someone else while being rewritten (left for a rerun).
    pub changed_meanwhile: u64,
}

async fn encrypt(pool: &PgPool, cipher: &KeyCipher, batch_size: u32) -> anyhow::Result<()> {
    let counts = encrypt_keys(pool, cipher, batch_size).await?;
    println!(
        "encrypted {}, re-encrypted {}, under the current key {}, not decryptable {}, changed meanwhile {}",
        counts.encrypted,
        counts.reencrypted,
        counts.current,
        counts.failed,
        counts.changed_meanwhile
    );
    if counts.failed > 0 {
        bail!(
            "{} private key(s) do not decrypt with the configured keys (their public keys are in the log): add the key they were encrypted with",
            counts.failed
        );
    }
    Ok(())
}

/// Rewrites, in batches of `batch_size` rows per transaction, every private
/// key that is plain text or under a key other than the current one. Rows
/// already current are not touched, so a second run changes nothing.
pub async fn encrypt_keys(
    pool: &PgPool,
    cipher: &KeyCipher,
    batch_size: u32,
) -> anyhow::Result<EncryptCounts> {
    let Some(prefix) = cipher.current_prefix() else {
        bail!(
            "no key encryption key is configured: set ORDERSUM_KEY_ENCRYPTION_KEYS (see `ordersum keys new-encryption-key`)"
        );
    };
    let mut counts = EncryptCounts::default();
    let mut after: Option<String> = None;
    loop {
        let mut tx = pool.begin().await.context("starting a transaction")?;
        let rows = keys_to_rewrite(&mut *tx, &prefix, after.as_deref(), batch_size)
            .await
            .context("reading API keys")?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = Some(last.clone());
        for (public_key, stored) in &rows {
            let plain = match cipher.open(public_key, stored) {
                Ok(plain) => plain,
                Err(err) => {
                    tracing::warn!(public_key, error = %err, "private key left as it is");
                    counts.failed += 1;
                    continue;
                }
            };
            let sealed = cipher.seal(public_key, plain.expose_secret())?;
            if !replace_private_key(&mut *tx, public_key, stored, &sealed)
                .await
                .context("updating an API key")?
            {
                counts.changed_meanwhile += 1;
            } else if matches!(StoredKey::parse(stored), Ok(StoredKey::Plain(_))) {
                counts.encrypted += 1;
            } else {
                counts.reencrypted += 1;
            }
        }
        tx.commit().await.context("committing a batch")?;
    }
    counts.current = count_under_prefix(pool, &prefix)
        .await
        .context("counting API keys")?;
    Ok(counts)
}

/// Prints `id:base64` for ORDERSUM_KEY_ENCRYPTION_KEYS on stdout.
pub fn print_new_encryption_key(id: &Option<String>) -> anyhow::Result<()> {
    let id = id
        .clone()
        .unwrap_or_else(|| format!("k{}", chrono::Utc::now().format("%Y%m%d")));
    let entry = ordersum_model::keycrypt::generate_key_entry(&id)?;
    println!("{}", entry.expose_secret());
    eprintln!(
        "put it first in ORDERSUM_KEY_ENCRYPTION_KEYS (keep older entries after it), then run `ordersum keys encrypt`"
    );
    Ok(())
}

/// Up to `limit` keys after `after` (by public key) whose stored private key
/// does not start with `prefix`.
#[tracing::instrument(skip_all, err)]
async fn keys_to_rewrite(
    db: impl PgExecutor<'_>,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        r#"SELECT public_key, private_key FROM api_keys
           WHERE NOT starts_with(private_key, $1) AND ($2::text IS NULL OR public_key > $2)
           ORDER BY public_key LIMIT $3"#,
    )
    .bind(prefix)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
}

/// Sets the stored private key if it is still `old`; false otherwise.
#[tracing::instrument(skip_all, err)]
async fn replace_private_key(
    db: impl PgExecutor<'_>,
    public_key: &str,
    old: &str,
    new: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        r#"UPDATE api_keys SET private_key = $3 WHERE public_key = $1 AND private_key = $2"#,
    )
    .bind(public_key)
    .bind(old)
    .bind(new)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(skip_all, err)]
async fn count_under_prefix(db: impl PgExecutor<'_>, prefix: &str) -> Result<u64, sqlx::Error> {
    let count: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM api_keys WHERE starts_with(private_key, $1)"#)
            .bind(prefix)
            .fetch_one(db)
            .await?;
    Ok(count.unsigned_abs())
}

async fn disable(pool: &PgPool, public_key: &str) -> anyhow::Result<()> {
    if !disable_api_key(pool, public_key)
        .await
        .context("disabling the API key")?
    {
        bail!("public key {public_key} not found");
    }
    println!("disabled public key {public_key}");
    Ok(())
}

/// Sets `disabled`; false when no key has that public part.
#[tracing::instrument(skip_all, err)]
async fn disable_api_key(pool: &PgPool, public_key: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(r#"UPDATE api_keys SET disabled = true WHERE public_key = $1"#)
        .bind(public_key)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let keys = KeyPair::generate(&mut rand::rng());
        let suffix = keys.public_key.strip_prefix("osk-").expect("osk- prefix");
        assert_eq!(suffix.len(), 24);
        assert!(
            suffix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(keys.private_key.len(), 40);
        assert!(
            keys.private_key
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(keys, KeyPair::generate(&mut rand::rng()));
    }
}
