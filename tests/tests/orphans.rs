//! Customer data does not outlive retention: objects that attempts left
//! under a job's prefix without the row recording them (a worker killed
//! between its upload and recording the outcome, an attempt that lost its
//! job and could not delete its own) go with the job's summary when it
//! expires, and with the row of a job that ended long ago. On the local
//! file store and on S3.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use ordersum_storage::Store;
use ordersum_tests::oracle::{COMPANY, run_window_summary};
use ordersum_tests::{
    TestApp, s3_storage, seed, spawn_app_with, spawn_worker, sweep, test_settings,
};
use ordersum_worker::sweeper::sweep_once;
use sqlx::PgPool;
use uuid::Uuid;

/// Stores `bytes` under `key` through the store's own upload path.
async fn put(store: &Store, key: &str, bytes: &'static [u8]) {
    let (mut writer, reader) = ordersum_storage::pipe();
    let write = tokio::task::spawn_blocking(move || {
        std::io::Write::write_all(&mut writer, bytes)?;
        writer.finish()
    });
    let size = store.put_stream(key, reader, "stray.xlsx").await.unwrap();
    write.await.unwrap().unwrap();
    assert_eq!(size, bytes.len() as u64);
    assert!(store.exists(key).await.unwrap(), "{key} was not stored");
}

fn window() -> (i64, i64) {
    let now = Utc::now().timestamp();
    (now - 31 * 86_400, now + 86_400)
}

/// Runs a summary, leaves a stray object of another attempt beside it, lets
/// retention end and sweeps: neither may be left.
async fn expiry_deletes_every_attempts_object(app: TestApp) {
    seed(&app.pool, COMPANY, 300, 30, 71).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |_| {}).await;
    let job = run_window_summary(&app, &key, window()).await;
    assert_eq!(job["Status"], "Succeeded", "{job}");
    worker.stop().await;
    let id = Uuid::parse_str(job["JobId"].as_str().unwrap()).unwrap();
    let recorded: String = sqlx::query_scalar("SELECT file_key FROM summary_jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let ctx = ordersum_tests::idle_worker_context(&app, |_| {}).await;
    let store = &ctx.store;
    assert!(store.exists(&recorded).await.unwrap());
    // An attempt whose worker was killed after its upload.
    let stray = store.object_key(COMPANY, id, 7, "stray.xlsx");
    put(store, &stray, b"PK stray attempt").await;
    // Another job's object, which must stay.
    let other = store.object_key(COMPANY, Uuid::now_v7(), 1, "other.xlsx");
    put(store, &other, b"PK other job").await;

    sqlx::query("UPDATE summary_jobs SET expires_at = now() - interval '1 s' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let swept = sweep(&ctx).await;

    assert_eq!(swept.expired, 1, "{swept:?}");
    assert!(
        !store.exists(&recorded).await.unwrap(),
        "the recorded summary is still there"
    );
    assert!(
        !store.exists(&stray).await.unwrap(),
        "the stray attempt's object outlived retention"
    );
    assert!(
        store.exists(&other).await.unwrap(),
        "another job's object went too"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM summary_jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "expired");
}

/// A failed job's attempts left objects; once its row is past row
/// retention a sweep deletes them and the row.
async fn row_retention_deletes_the_objects_of_a_failed_job(app: TestApp) {
    let ctx = ordersum_tests::idle_worker_context(&app, |s| s.job_row_retention_days = 30).await;
    let store = &ctx.store;
    let mut jobs = Vec::new();
    for days in [31, 29] {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO summary_jobs (id, company_id, request, request_hash, status, attempts, \
             created_at, finished_at, error_message) \
             VALUES ($1, $2, '{}', $3, 'failed', 2, now() - interval '60 days', \
                     now() - make_interval(days => $4), 'the summary could not be made')",
        )
        .bind(id)
        .bind(COMPANY)
        .bind(id.to_string())
        .bind(days)
        .execute(&app.pool)
        .await
        .unwrap();
        let keys = [
            store.object_key(COMPANY, id, 1, "summary.xlsx"),
            store.object_key(COMPANY, id, 2, "summary.xlsx"),
        ];
        for key in &keys {
            put(store, key, b"PK failed attempt").await;
        }
        jobs.push((id, keys));
    }

    let swept = sweep(&ctx).await;

    assert_eq!(swept.rows_deleted, 1, "{swept:?}");
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM summary_jobs")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let (old, old_keys) = &jobs[0];
    let (recent, recent_keys) = &jobs[1];
    assert_eq!(
        left,
        vec![*recent],
        "only the recent failed job's row stays"
    );
    for key in old_keys {
        assert!(
            !store.exists(key).await.unwrap(),
            "{key} of deleted job {old} outlived its row"
        );
    }
    for key in recent_keys {
        assert!(
            store.exists(key).await.unwrap(),
            "{key} of job {recent}, still within row retention, is gone"
        );
    }
}

fn s3_settings() -> ordersum_api::Settings {
    let mut settings = test_settings();
    s3_storage(&mut settings.storage);
    settings
}

#[sqlx::test(migrations = "../migrations")]
async fn an_expired_summary_takes_every_attempts_object_with_it_on_the_file_store(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    let root = std::path::PathBuf::from(app.settings.storage.url.trim_start_matches("file://"));
    let company_dir = root.join("summaries").join(COMPANY.to_string());
    expiry_deletes_every_attempts_object(app).await;
    // The job's directory went too; only the other job's file is left.
    let dirs: Vec<_> = std::fs::read_dir(&company_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn an_expired_summary_takes_every_attempts_object_with_it_on_s3(pool: PgPool) {
    let app = spawn_app_with(pool, s3_settings()).await;
    expiry_deletes_every_attempts_object(app).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_long_failed_job_loses_its_attempts_objects_with_its_row_on_the_file_store(pool: PgPool) {
    let app = spawn_app_with(pool, test_settings()).await;
    row_retention_deletes_the_objects_of_a_failed_job(app).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_long_failed_job_loses_its_attempts_objects_with_its_row_on_s3(pool: PgPool) {
    let app = spawn_app_with(pool, s3_settings()).await;
    row_retention_deletes_the_objects_of_a_failed_job(app).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_row_of_a_job_whose_objects_the_store_would_not_delete_stays_for_the_next_sweep(
    pool: PgPool,
) {
    let app = spawn_app_with(pool, s3_settings()).await;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO summary_jobs (id, company_id, request, request_hash, status, \
         created_at, finished_at) \
         VALUES ($1, $2, '{}', $3, 'failed', now() - interval '60 days', \
                 now() - interval '31 days')",
    )
    .bind(id)
    .bind(COMPANY)
    .bind(id.to_string())
    .execute(&app.pool)
    .await
    .unwrap();
    // The same S3 server, but a bucket that does not exist: listing fails.
    let missing = format!("s3://no-such-bucket-{}/", Uuid::new_v4().simple());
    let url = app
        .settings
        .storage
        .url
        .replacen(&format!("s3://{}/", bucket_of(&app)), &missing, 1);
    assert!(url.starts_with(&missing), "{url}");
    let broken = ordersum_tests::idle_worker_context(&app, |s| {
        s.job_row_retention_days = 30;
        s.storage.url = url;
    })
    .await;

    let failed = sweep_once(&broken).await;

    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        app.job_rows(COMPANY).await,
        1,
        "the row went before its objects"
    );
    let ctx = ordersum_tests::idle_worker_context(&app, |s| s.job_row_retention_days = 30).await;
    assert_eq!(sweep(&ctx).await.rows_deleted, 1);
    assert_eq!(app.job_rows(COMPANY).await, 0);
}

/// The bucket of an `s3://bucket/prefix?…` store URL.
fn bucket_of(app: &TestApp) -> String {
    let url = app.settings.storage.url.trim_start_matches("s3://");
    url.split('/').next().unwrap().to_owned()
}
