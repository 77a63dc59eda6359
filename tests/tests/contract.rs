//! The answers a UCloud SDK user relies on: `DownloadOrderSummary` carries
//! the file as soon as the job has ended, and a page of jobs stays small
//! whatever the jobs' requests held.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use ordersum_tests::oracle::{COMPANY, data_rows, download_workbook};
use ordersum_tests::{ret_code, seed, spawn_app_with, spawn_worker, test_settings};
use serde_json::Value;
use sqlx::PgPool;

/// The last 30 days, as `DownloadOrderSummary` params.
fn last_month() -> (String, String) {
    let now = Utc::now().timestamp();
    ((now - 30 * 86_400).to_string(), now.to_string())
}

#[sqlx::test(migrations = "../migrations")]
async fn download_order_summary_answers_the_file_when_it_ends_within_the_default_wait(
    pool: PgPool,
) {
    // The operator serves UCloud's typed SDK methods, which cannot send
    // WaitSeconds: the server default makes the call wait for small jobs.
    let mut settings = test_settings();
    settings.default_wait_secs = 30;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 400, 20, 7).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |_| {}).await;
    let (start, end) = last_month();
    let params = [
        ("Action", "DownloadOrderSummary"),
        ("StartTime", start.as_str()),
        ("EndTime", end.as_str()),
    ];

    let answer = app.call(&key, &params).await;
    assert_eq!(ret_code(&answer), 0, "{answer}");
    assert_eq!(answer["Status"], "Succeeded", "{answer}");
    let data = &answer["Data"];
    assert!(data["DownloadURL"].as_str().is_some(), "{answer}");
    assert!(
        data["FileName"].as_str().unwrap().ends_with(".xlsx"),
        "{answer}"
    );
    let sheets = download_workbook(&app, &answer).await;
    let rows = data_rows(&sheets, "Paid Orders", true).len()
        + data_rows(&sheets, "Unpaid Orders", false).len();
    assert!(rows > 0, "the summary holds the seeded orders");

    // GetOrderSummaryJob describes the same file.
    let job_id = answer["JobId"].as_str().unwrap();
    let job = app
        .call(&key, &[("Action", "GetOrderSummaryJob"), ("JobId", job_id)])
        .await;
    assert_eq!(job["Data"]["FileName"], data["FileName"]);
    assert_eq!(job["Data"]["FileSize"], data["FileSize"]);

    // An equal request while the file is fresh: the same job, answered at
    // once with its file, even without waiting.
    let mut again = params.to_vec();
    again.push(("WaitSeconds", "0"));
    let dedup = app.call(&key, &again).await;
    assert_eq!(dedup["JobId"], answer["JobId"]);
    assert_eq!(dedup["Status"], "Succeeded");
    assert_eq!(dedup["Data"]["FileSize"], data["FileSize"]);
    download_workbook(&app, &dedup).await;
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_page_of_jobs_stays_small_whatever_their_requests_held(pool: PgPool) {
    let mut settings = test_settings();
    settings.max_active_jobs = 100;
    let app = spawn_app_with(pool, settings).await;
    let key = app.create_key(COMPANY).await;
    // Twenty jobs, each with the longest list a request may carry: 1 000
    // resource ids of 200 characters (~200 KB of request per job).
    let ids: Vec<String> = (0..1000)
        .map(|i| format!("{i:04}-{}", "r".repeat(195)))
        .collect();
    for job in 0..20 {
        let start = (1_719_792_000 + job).to_string();
        let mut params = vec![
            ("Action", "DownloadOrderSummary"),
            ("StartTime", start.as_str()),
            ("EndTime", "1722470400"),
        ];
        let keys: Vec<String> = (0..ids.len()).map(|i| format!("ResourceIds.{i}")).collect();
        params.extend(
            keys.iter()
                .map(String::as_str)
                .zip(ids.iter().map(String::as_str)),
        );
        let answer = app.call(&key, &params).await;
        assert_eq!(ret_code(&answer), 0, "{answer}");
    }

    let page = app
        .http
        .post(app.url())
        .form(&ordersum_tests::signed(
            &key,
            &[("Action", "ListOrderSummaryJobs"), ("Limit", "100")],
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    println!(
        "ListOrderSummaryJobs answer of 20 such jobs: {} bytes",
        page.len()
    );
    assert!(page.len() < 64 * 1024, "{} bytes", page.len());
    let page: Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(ret_code(&page), 0, "{page}");
    let jobs = page["Jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 20);
    for job in jobs {
        assert_eq!(job["RequestTruncated"], true, "{job}");
        assert_eq!(
            job["Request"]["ResourceIds"].as_array().unwrap().len(),
            ordersum_api::jobs::LISTED_REQUEST_ITEMS
        );
        assert_eq!(
            job["Request"]["ResourceIds"][0].as_str(),
            Some(ids[0].as_str())
        );
    }

    // The API never held the whole requests to answer: the rows it reads
    // carry one item more than it shows.
    let rows = ordersum_model::store::jobs::list_jobs(&app.pool, COMPANY, 0, 100, 5)
        .await
        .unwrap();
    assert_eq!(rows.len(), 20);
    assert!(
        rows.iter()
            .all(|job| job.request.0["ResourceIds"].as_array().unwrap().len() == 6)
    );

    // The job itself still shows the whole request.
    let one = app
        .call(
            &key,
            &[
                ("Action", "GetOrderSummaryJob"),
                ("JobId", jobs[0]["JobId"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(
        one["Request"]["ResourceIds"].as_array().unwrap().len(),
        1000
    );
    assert!(one.get("RequestTruncated").is_none());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_cli_summary_works_where_timestamps_are_required(pool: PgPool) {
    // The operator refuses unsigned-time calls and replays; `ordersum
    // summary` signs a Timestamp and a nonce into every call, its polls
    // included.
    let mut settings = test_settings();
    settings.require_timestamp = true;
    let app = spawn_app_with(pool, settings).await;
    seed(&app.pool, COMPANY, 300, 20, 8).await;
    let key = app.create_key(COMPANY).await;
    let worker = spawn_worker(&app, |_| {}).await;
    let (start, end) = last_month();
    let output = ordersum_tests::scratch_dir("cli").join("summary.xlsx");
    let args = ordersum_cli::summary::SummaryArgs {
        start,
        end,
        resource_ids: vec![],
        model_ids: vec![],
        pricing_units: vec![],
        order_types: vec![],
        charge_types: vec![],
        organization_ids: vec![],
        regions: vec![],
        pricing_skus: vec![],
        product_codes: vec![],
        time_zone: None,
        output: Some(output.clone()),
        api_url: app.url(),
        public_key: key.public.clone(),
        private_key: key.private.clone(),
        timeout_secs: 60,
    };
    ordersum_cli::summary::run(args).await.unwrap();
    let sheets = ordersum_tests::oracle::read_workbook(std::fs::read(&output).unwrap());
    let rows = data_rows(&sheets, "Paid Orders", true).len()
        + data_rows(&sheets, "Unpaid Orders", false).len();
    assert!(rows > 0, "the summary holds the seeded orders");
    worker.stop().await;
}
