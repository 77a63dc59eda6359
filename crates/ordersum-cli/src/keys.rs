//! `ordersum keys`: API key pairs of a company.

use std::io::Write;

use anyhow::{Context, bail};
use rand::CryptoRng;
use sqlx::PgPool;

/// `ordersum keys` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key pair for a company and print it as shell assignments.
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

pub async fn run(pool: &PgPool, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { company } => create(pool, company).await,
        KeysCommand::Disable { public_key } => disable(pool, &public_key).await,
    }
}

/// Prints exactly two lines on stdout, so `eval "$(ordersum keys create ...)"`
/// sets both variables.
async fn create(pool: &PgPool, company_id: i64) -> anyhow::Result<()> {
    let keys = KeyPair::generate(&mut rand::rng());
    ordersum_model::repo::insert_api_key(pool, &keys.public_key, &keys.private_key, company_id)
        .await
        .context("inserting the API key")?;
    tracing::info!(company_id, public_key = %keys.public_key, "created API key");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ORDERSUM_PUBLIC_KEY={}", keys.public_key)
        .and_then(|()| writeln!(stdout, "ORDERSUM_PRIVATE_KEY={}", keys.private_key))
        .context("writing the keys to stdout")
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
