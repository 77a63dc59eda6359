//! The job API: enqueue (the id really lands in Redis through apalis), dedup,
//! the per-company cap, cancel, list, long-polling, company isolation, and
//! the same job whatever the encoding.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use apalis::prelude::*;
use apalis_redis::{Config, RedisStorage};
use ordersum_queue::JobMessage;
use ordersum_tests::{Key, TestApp, redis_url, ret_code, spawn_app, spawn_app_with, test_settings};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const JULY: [(&str, &str); 3] = [
    ("Action", "DownloadOrderSummary"),
    ("StartTime", "1719792000"),
    ("EndTime", "1722470400"),
];

async fn download(app: &TestApp, key: &Key, extra: &[(&str, &str)]) -> Value {
    let mut params = JULY.to_vec();
    params.extend_from_slice(extra);
    app.call(key, &params).await
}

fn job_id(body: &Value) -> String {
    body["JobId"]
        .as_str()
        .unwrap_or_else(|| panic!("no JobId in {body}"))
        .to_owned()
}

async fn get_job(app: &TestApp, key: &Key, id: &str) -> Value {
    app.call(key, &[("Action", "GetOrderSummaryJob"), ("JobId", id)])
        .await
}

#[sqlx::test(migrations = "../migrations")]
async fn an_enqueued_job_id_is_delivered_to_an_apalis_worker(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(3).await;
    let body = download(&app, &key, &[]).await;
    assert_eq!(ret_code(&body), 0, "{body}");
    let id = Uuid::parse_str(&job_id(&body)).unwrap();

    // A real apalis-redis consumer on the API's queue receives exactly that id.
    let conn = apalis_redis::connect(redis_url()).await.unwrap();
    let storage = RedisStorage::<JobMessage>::new(conn)
        .with_config(Config::default().queue(&app.settings.backends.queue))
        .poll_with_interval(Duration::from_millis(100));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Uuid>();
    async fn consume(
        message: JobMessage,
        tx: Data<tokio::sync::mpsc::UnboundedSender<Uuid>>,
    ) -> Result<(), BoxDynError> {
        tx.send(message.job_id)?;
        Ok(())
    }
    let worker = WorkerBuilder::new(format!("test-consumer-{}", Uuid::new_v4()))
        .backend(storage)
        .data(tx)
        .build(consume);
    let handle = tokio::spawn(async move { worker.run().await });
    let received = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap();
    handle.abort();
    assert_eq!(received, id);
}

#[sqlx::test(migrations = "../migrations")]
async fn equal_requests_of_a_company_share_one_job(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(3).await;
    let first = download(
        &app,
        &key,
        &[("Regions.0", "cn-bj2"), ("Regions.1", "cn-sh2")],
    )
    .await;
    // Same filters in another order, with a duplicate and another key of the same company.
    let other_key = app.create_key(3).await;
    let second = download(
        &app,
        &other_key,
        &[
            ("Regions.0", "cn-sh2"),
            ("Regions.1", "cn-bj2"),
            ("Regions.2", "cn-sh2"),
            ("WaitSeconds", "0"),
        ],
    )
    .await;
    assert_eq!(job_id(&first), job_id(&second));
    // Other filters, another time zone, or another company: new jobs.
    let third = download(&app, &key, &[("Regions.0", "cn-bj2")]).await;
    let fourth = download(
        &app,
        &key,
        &[("Regions.0", "cn-bj2"), ("TimeZone", "Asia/Shanghai")],
    )
    .await;
    let stranger = app.create_key(4).await;
    let fifth = download(
        &app,
        &stranger,
        &[("Regions.0", "cn-bj2"), ("Regions.1", "cn-sh2")],
    )
    .await;
    let ids = [
        job_id(&first),
        job_id(&third),
        job_id(&fourth),
        job_id(&fifth),
    ];
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 4, "{ids:?}");
    assert_eq!(app.job_rows(3).await, 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_succeeded_job_answers_equal_requests_only_while_fresh(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let key = app.create_key(3).await;
    let first = job_id(&download(&app, &key, &[]).await);
    sqlx::query(
        "UPDATE summary_jobs SET status = 'succeeded', finished_at = now() WHERE id = $1::uuid",
    )
    .bind(&first)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(job_id(&download(&app, &key, &[]).await), first);
    sqlx::query(
        "UPDATE summary_jobs SET finished_at = now() - interval '2 minutes' WHERE id = $1::uuid",
    )
    .bind(&first)
    .execute(&pool)
    .await
    .unwrap();
    assert_ne!(job_id(&download(&app, &key, &[]).await), first);
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_equal_requests_create_one_job(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(3).await;
    let calls = (0..8).map(|_| download(&app, &key, &[("ModelIds.0", "deepseek-r1")]));
    let answers = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = answers.iter().map(job_id).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(app.job_rows(3).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_company_past_its_active_job_cap_gets_153_until_one_ends(pool: PgPool) {
    let mut settings = test_settings();
    settings.max_active_jobs = 2;
    let app = spawn_app_with(pool, settings).await;
    let key = app.create_key(3).await;
    let a = download(&app, &key, &[("Regions.0", "a")]).await;
    let _b = download(&app, &key, &[("Regions.0", "b")]).await;
    let c = download(&app, &key, &[("Regions.0", "c")]).await;
    assert_eq!(ret_code(&c), 153, "{c}");
    assert!(c["Message"].as_str().unwrap().contains("at most 2"), "{c}");
    assert_eq!(app.job_rows(3).await, 2);
    // An equal request is still answered with its job, cap or not.
    assert_eq!(
        ret_code(&download(&app, &key, &[("Regions.0", "a")]).await),
        0
    );
    // Another company is not affected.
    let other = app.create_key(4).await;
    assert_eq!(
        ret_code(&download(&app, &other, &[("Regions.0", "c")]).await),
        0
    );
    // Cancelling one makes room.
    let cancel = app
        .call(
            &key,
            &[("Action", "CancelOrderSummaryJob"), ("JobId", &job_id(&a))],
        )
        .await;
    assert_eq!(ret_code(&cancel), 0, "{cancel}");
    assert_eq!(
        ret_code(&download(&app, &key, &[("Regions.0", "c")]).await),
        0
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_cancelled_job_shows_cancelled_and_cancelling_again_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(3).await;
    let id = job_id(&download(&app, &key, &[]).await);
    let cancel = app
        .call(&key, &[("Action", "CancelOrderSummaryJob"), ("JobId", &id)])
        .await;
    assert_eq!(ret_code(&cancel), 0, "{cancel}");
    assert_eq!(cancel["Status"], "Cancelled");
    let job = get_job(&app, &key, &id).await;
    assert_eq!(job["Status"], "Cancelled");
    assert!(job["FinishTime"].as_i64().unwrap() >= job["CreateTime"].as_i64().unwrap());
    let again = app
        .call(&key, &[("Action", "CancelOrderSummaryJob"), ("JobId", &id)])
        .await;
    assert_eq!(
        (ret_code(&again), again["Status"].as_str()),
        (0, Some("Cancelled"))
    );
    // A cancelled job is not reused for an equal request.
    assert_ne!(job_id(&download(&app, &key, &[]).await), id);
}

#[sqlx::test(migrations = "../migrations")]
async fn another_companys_job_does_not_exist_for_the_caller(pool: PgPool) {
    let app = spawn_app(pool).await;
    let owner = app.create_key(3).await;
    let stranger = app.create_key(4).await;
    let id = job_id(&download(&app, &owner, &[]).await);
    let unknown = Uuid::new_v4().to_string();
    for action in ["GetOrderSummaryJob", "CancelOrderSummaryJob"] {
        let theirs = app
            .call(&stranger, &[("Action", action), ("JobId", &id)])
            .await;
        let missing = app
            .call(&stranger, &[("Action", action), ("JobId", &unknown)])
            .await;
        assert_eq!(theirs["RetCode"], missing["RetCode"], "{action}");
        assert_eq!(theirs["Message"], missing["Message"], "{action}");
        assert_eq!(ret_code(&theirs), 230);
    }
    let list = app
        .call(&stranger, &[("Action", "ListOrderSummaryJobs")])
        .await;
    assert_eq!(list["TotalCount"], 0);
    assert_eq!(get_job(&app, &owner, &id).await["Status"], "Queued");
}

#[sqlx::test(migrations = "../migrations")]
async fn list_pages_the_companys_jobs_newest_first(pool: PgPool) {
    let mut settings = test_settings();
    settings.max_active_jobs = 10;
    let app = spawn_app_with(pool, settings).await;
    let key = app.create_key(3).await;
    let mut ids = Vec::new();
    for region in ["r1", "r2", "r3", "r4", "r5"] {
        ids.push(job_id(
            &download(&app, &key, &[("Regions.0", region)]).await,
        ));
    }
    ids.reverse();
    let page = app
        .call(
            &key,
            &[
                ("Action", "ListOrderSummaryJobs"),
                ("Offset", "1"),
                ("Limit", "3"),
            ],
        )
        .await;
    assert_eq!(ret_code(&page), 0, "{page}");
    assert_eq!(page["TotalCount"], 5);
    let listed: Vec<&str> = page["Jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["JobId"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ids[1..4].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let first = &page["Jobs"][0];
    assert_eq!(first["Status"], "Queued");
    assert_eq!(first["Request"]["Regions"], json!(["r4"]));
    assert_eq!(first["Progress"], json!({ "PaidRows": 0, "UnpaidRows": 0 }));
    let default = app.call(&key, &[("Action", "ListOrderSummaryJobs")]).await;
    assert_eq!(default["Jobs"].as_array().unwrap().len(), 5);
}

#[sqlx::test(migrations = "../migrations")]
async fn json_form_and_get_encodings_give_the_same_job(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = app.create_key(3).await;
    let form = download(
        &app,
        &key,
        &[
            ("ResourceIds.0", "mv-2"),
            ("ResourceIds.1", "mv-1"),
            ("OrderTypes.0", "1"),
            ("ProductCodes.0", "modelverse"),
        ],
    )
    .await;
    let mut get_params = JULY.to_vec();
    get_params.extend([
        ("ResourceIds.1", "mv-2"),
        ("ResourceIds.0", "mv-1"),
        ("OrderTypes.0", "1"),
        ("ProductCodes.N", "modelverse"),
    ]);
    let get = app.call_get(&key, &get_params).await;
    let json = app
        .call_json(
            &key,
            json!({
                "Action": "DownloadOrderSummary",
                "StartTime": 1719792000,
                "EndTime": "1722470400",
                "ResourceIds": ["mv-1", "mv-2"],
                "OrderTypes": [1],
                "ProductCodes": ["modelverse"],
                "Region": "cn-bj2"
            }),
        )
        .await;
    let json_flat = app
        .call_json(
            &key,
            json!({
                "Action": "DownloadOrderSummary",
                "StartTime": "1719792000",
                "EndTime": "1722470400",
                "ResourceIds.0": "mv-1",
                "ResourceIds.1": "mv-2",
                "OrderTypes.0": "1",
                "ProductCodes.0": "modelverse"
            }),
        )
        .await;
    let ids: Vec<String> = [&form, &get, &json, &json_flat]
        .iter()
        .map(|b| job_id(b))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(app.job_rows(3).await, 1);
    let job = get_job(&app, &key, &ids[0]).await;
    assert_eq!(
        job["Request"],
        json!({
            "StartTime": 1719792000, "EndTime": 1722470400, "ResourceIds": ["mv-1", "mv-2"],
            "OrderTypes": [1], "ProductCodes": ["modelverse"], "TimeZone": "UTC"
        })
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn wait_seconds_long_polls_until_the_job_ends(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let key = app.create_key(3).await;
    let id = job_id(&download(&app, &key, &[]).await);

    // Nothing happens: the call answers after about WaitSeconds, still queued.
    let started = std::time::Instant::now();
    let job = app
        .call(
            &key,
            &[
                ("Action", "GetOrderSummaryJob"),
                ("JobId", &id),
                ("WaitSeconds", "1"),
            ],
        )
        .await;
    assert_eq!(job["Status"], "Queued");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // The job ends meanwhile: the call answers early with the new status.
    let pool2 = pool.clone();
    let id2 = id.clone();
    tokio::spawn(async move {
        // Time is what is tested: the job ends half a second into the wait.
        tokio::time::sleep(Duration::from_millis(500)).await;
        sqlx::query("UPDATE summary_jobs SET status = 'failed', error_message = 'boom', finished_at = now() WHERE id = $1::uuid")
            .bind(&id2)
            .execute(&pool2)
            .await
            .unwrap();
    });
    let started = std::time::Instant::now();
    let job = app
        .call(
            &key,
            &[
                ("Action", "GetOrderSummaryJob"),
                ("JobId", &id),
                ("WaitSeconds", "20"),
            ],
        )
        .await;
    assert_eq!(job["Status"], "Failed");
    assert_eq!(job["ErrorMessage"], "boom");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
