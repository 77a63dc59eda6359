//! Private keys at rest: keys created with encryption on are stored
//! encrypted and still sign calls the API accepts; plain rows keep working;
//! `ordersum keys encrypt` converts plain rows once, and re-encrypts under a
//! new key on rotation.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use ordersum_api::Settings;
use ordersum_cli::keys::{EncryptCounts, create_key, encrypt_keys};
use ordersum_model::keycrypt::KeyCipher;
use ordersum_runtime::KeyEncryptionSettings;
use ordersum_tests::procs::workspace_binary;
use ordersum_tests::{Key, TestApp, ret_code, spawn_app_with, test_settings};
use sqlx::PgPool;

const OLD: &str = "old:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OLD_MATERIAL: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const NEW: &str = "new:5f5e5d5c5b5a59585756555453525150ffeeddccbbaa99887766554433221100";
const NEW_MATERIAL: &str = "5f5e5d5c5b5a59585756555453525150ffeeddccbbaa99887766554433221100";

/// Test settings with `keys` (`id:key,...`) as ORDERSUM_KEY_ENCRYPTION_KEYS
/// (none when empty), and no key cache, so every call reads the row.
fn settings_with_keys(keys: &str) -> Settings {
    let mut settings = test_settings();
    if !keys.is_empty() {
        settings.key_encryption = KeyEncryptionSettings::from_spec(keys);
    }
    settings.key_cache_secs = 0;
    settings
}

async fn app_with_keys(pool: &PgPool, keys: &str) -> TestApp {
    spawn_app_with(pool.clone(), settings_with_keys(keys)).await
}

fn cipher(keys: &str) -> KeyCipher {
    KeyCipher::parse(keys).unwrap()
}

/// A key made by `ordersum keys create` with `keys` configured.
async fn created_key(pool: &PgPool, company_id: i64, keys: &str) -> Key {
    let pair = create_key(pool, company_id, &cipher(keys)).await.unwrap();
    Key {
        public: pair.public_key,
        private: pair.private_key,
        company_id,
    }
}

/// What `api_keys.private_key` holds for `key`.
async fn stored(pool: &PgPool, key: &Key) -> String {
    sqlx::query_scalar("SELECT private_key FROM api_keys WHERE public_key = $1")
        .bind(&key.public)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Every stored private key, by public key.
async fn all_stored(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT public_key, private_key FROM api_keys ORDER BY public_key")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// RetCode of a signed `ListOrderSummaryJobs` call with `key`.
async fn list_ret_code(app: &TestApp, key: &Key) -> i64 {
    let body = app.call(key, &[("Action", "ListOrderSummaryJobs")]).await;
    if ret_code(&body) != 0 {
        let message = body["Message"].as_str().unwrap_or_default();
        assert!(!message.contains(&key.private), "{body}");
        assert!(!message.contains("enc:"), "{body}");
    }
    ret_code(&body)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_key_created_with_encryption_is_stored_encrypted_and_signs_calls_the_api_accepts(
    pool: PgPool,
) {
    let key = created_key(&pool, 7, OLD).await;

    let row = stored(&pool, &key).await;
    assert!(row.starts_with("enc:v1:old:"), "{row}");
    assert!(!row.contains(&key.private), "{row}");
    let app = app_with_keys(&pool, OLD).await;
    assert_eq!(list_ret_code(&app, &key).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_encrypted_key_whose_encryption_key_is_not_configured_answers_an_opaque_2000(
    pool: PgPool,
) {
    let key = created_key(&pool, 7, OLD).await;

    for keys in ["", NEW] {
        let app = app_with_keys(&pool, keys).await;
        let body = app.call(&key, &[("Action", "ListOrderSummaryJobs")]).await;
        assert_eq!(ret_code(&body), 2000, "{body}");
        assert_eq!(body["Message"], "Internal error, please retry later");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_plain_text_row_keeps_working_when_encryption_is_on(pool: PgPool) {
    let app = app_with_keys(&pool, OLD).await;
    let plain = app.create_key(7).await;

    assert_eq!(stored(&pool, &plain).await, plain.private);
    assert_eq!(list_ret_code(&app, &plain).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn keys_encrypt_converts_plain_rows_and_a_second_run_changes_nothing(pool: PgPool) {
    let app = app_with_keys(&pool, OLD).await;
    let mut keys = Vec::new();
    for company in 1..=3 {
        keys.push(app.create_key(company).await);
    }
    keys.push(created_key(&pool, 4, OLD).await);

    // Batches of two: the four rows take several transactions.
    let first = encrypt_keys(&pool, &cipher(OLD), 2).await.unwrap();
    let after_first = all_stored(&pool).await;
    let second = encrypt_keys(&pool, &cipher(OLD), 2).await.unwrap();

    assert_eq!(
        first,
        EncryptCounts {
            encrypted: 3,
            current: 4,
            ..EncryptCounts::default()
        }
    );
    assert_eq!(
        second,
        EncryptCounts {
            current: 4,
            ..EncryptCounts::default()
        }
    );
    assert_eq!(all_stored(&pool).await, after_first);
    for key in &keys {
        let row = stored(&pool, key).await;
        assert!(row.starts_with("enc:v1:old:"), "{row}");
        assert!(!row.contains(&key.private));
        assert_eq!(list_ret_code(&app, key).await, 0);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn after_rotation_keys_encrypt_re_encrypts_and_calls_keep_working(pool: PgPool) {
    let plain_then_old = {
        let app = app_with_keys(&pool, "").await;
        app.create_key(1).await
    };
    let old = created_key(&pool, 2, OLD).await;
    encrypt_keys(&pool, &cipher(OLD), 100).await.unwrap();
    let rotated = format!("{NEW},{OLD}");
    let during = app_with_keys(&pool, &rotated).await;
    // Both keys decrypt while the rows are rewritten.
    assert_eq!(list_ret_code(&during, &old).await, 0);

    let counts = encrypt_keys(&pool, &cipher(&rotated), 100).await.unwrap();

    assert_eq!(
        counts,
        EncryptCounts {
            reencrypted: 2,
            current: 2,
            ..EncryptCounts::default()
        }
    );
    let new_only = app_with_keys(&pool, NEW).await;
    let old_only = app_with_keys(&pool, OLD).await;
    for key in [&plain_then_old, &old] {
        assert!(stored(&pool, key).await.starts_with("enc:v1:new:"));
        assert_eq!(list_ret_code(&during, key).await, 0);
        assert_eq!(list_ret_code(&new_only, key).await, 0);
        // The old key alone no longer reads them: they really moved.
        assert_eq!(list_ret_code(&old_only, key).await, 2000);
    }
}

/// Runs `ordersum keys <args>` on the test database with `keys` as
/// ORDERSUM_KEY_ENCRYPTION_KEYS (unset when None); answers exit success,
/// stdout and stderr.
async fn ordersum_keys(app: &TestApp, keys: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(workspace_binary("ordersum"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app.database_url())
        .env("RUST_LOG", "info")
        .arg("keys")
        .args(args)
        .stdin(Stdio::null());
    if let Some(keys) = keys {
        command.env("ORDERSUM_KEY_ENCRYPTION_KEYS", keys);
    }
    let output = command.output().await.unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn the_keys_commands_read_the_encryption_keys_from_the_environment_and_never_print_them(
    pool: PgPool,
) {
    let app = app_with_keys(&pool, OLD).await;
    let plain = app.create_key(1).await;

    let (ok, _, refused) = ordersum_keys(&app, None, &["encrypt"]).await;
    assert!(!ok);
    assert!(
        refused.contains("ORDERSUM_KEY_ENCRYPTION_KEYS"),
        "{refused}"
    );
    assert_eq!(stored(&pool, &plain).await, plain.private);

    let short_key = "old:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
    let (ok, _, bad) = ordersum_keys(&app, Some(short_key), &["encrypt"]).await;
    assert!(!ok);
    assert!(bad.contains("entry 1"), "{bad}");
    assert!(!bad.contains("AAECAwQF"), "{bad}");

    let (ok, out, err) = ordersum_keys(&app, Some(&format!("{NEW},{OLD}")), &["encrypt"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("encrypted 1, re-encrypted 0"), "{out}");
    assert!(!format!("{out}{err}").contains(OLD_MATERIAL));
    assert!(!format!("{out}{err}").contains(NEW_MATERIAL));
    assert!(stored(&pool, &plain).await.starts_with("enc:v1:new:"));

    let (ok, out, err) = ordersum_keys(&app, Some(NEW), &["create", "--company", "5"]).await;
    assert!(ok, "{err}");
    let line = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    let created = Key {
        public: line("ORDERSUM_PUBLIC_KEY="),
        private: line("ORDERSUM_PRIVATE_KEY="),
        company_id: 5,
    };
    assert!(stored(&pool, &created).await.starts_with("enc:v1:new:"));
    let app_new = app_with_keys(&pool, NEW).await;
    assert_eq!(list_ret_code(&app_new, &created).await, 0);
    assert_eq!(list_ret_code(&app_new, &plain).await, 0);
}
