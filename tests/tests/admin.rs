//! The operator console's endpoints (`/admin`): off without a token; the
//! token by sign-in form (an HttpOnly, SameSite=Strict session cookie) or
//! by Bearer header; wrong tokens limited; state changes refused without
//! the session's CSRF token or from another origin; and every action seen
//! by the customer through the public API as if the customer had done it.

#![allow(clippy::unwrap_used)]

use ordersum_tests::gate::OrdersGate;
use ordersum_tests::oracle::{submit_window_summary, wait_until_ended};
use ordersum_tests::{
    Key, TestApp, ret_code, seed, spawn_app, spawn_app_with, spawn_worker, test_settings,
};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use sqlx::PgPool;

const TOKEN: &str = "operator-token-for-the-tests-0123";

/// Every JSON endpoint that reads.
const READS: [&str; 4] = [
    "admin/api/overview",
    "admin/api/jobs",
    "admin/api/workers",
    "admin/api/companies",
];

struct Console {
    app: TestApp,
    /// Follows no redirects, keeps no cookies: each test sees them.
    http: reqwest::Client,
}

async fn console(pool: PgPool) -> Console {
    let mut settings = test_settings();
    settings.admin_token = Some(TOKEN.into());
    let app = spawn_app_with(pool, settings).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Console { app, http }
}

/// A signed-in browser: its cookie header and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Console {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.url())
    }

    async fn sign_in(&self, token: &str) -> reqwest::Response {
        self.http
            .post(self.url("admin/login"))
            .header("Origin", format!("http://{}", self.app.addr))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    async fn session(&self) -> Session {
        let response = self.sign_in(TOKEN).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let page = self
            .get_with_cookie("admin", &cookie)
            .await
            .text()
            .await
            .unwrap();
        let csrf = page
            .split("name=\"csrf-token\" content=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no CSRF token in the console page: {page}"))
            .to_owned();
        Session { cookie, csrf }
    }

    async fn get_with_cookie(&self, path: &str, cookie: &str) -> reqwest::Response {
        let request = self.http.get(self.url(path)).header("Cookie", cookie);
        request.send().await.unwrap()
    }

    async fn get_bearer(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        json(response).await
    }

    async fn post(&self, path: &str, headers: HeaderMap) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .headers(headers)
            .send()
            .await
            .unwrap();
        json(response).await
    }

    /// A POST as the console's own page sends it.
    async fn post_as_page(&self, session: &Session, path: &str) -> (StatusCode, Value) {
        self.post(path, self.page_headers(session)).await
    }

    fn page_headers(&self, session: &Session) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Cookie", HeaderValue::from_str(&session.cookie).unwrap());
        headers.insert(
            "X-CSRF-Token",
            HeaderValue::from_str(&session.csrf).unwrap(),
        );
        let origin = format!("http://{}", self.app.addr);
        headers.insert("Origin", HeaderValue::from_str(&origin).unwrap());
        headers.insert("Sec-Fetch-Site", HeaderValue::from_static("same-origin"));
        headers
    }

    /// The job as its customer sees it through the public API.
    async fn public_status(&self, key: &Key, id: &str) -> String {
        let job = self
            .app
            .call(key, &[("Action", "GetOrderSummaryJob"), ("JobId", id)])
            .await;
        assert_eq!(ret_code(&job), 0, "{job}");
        job["Status"].as_str().unwrap().to_owned()
    }
}

async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn window() -> (i64, i64) {
    let now = chrono::Utc::now().timestamp();
    (now - 3 * 86_400, now + 86_400)
}

/// A job of `key`'s company, queued (no worker runs in the test).
async fn queued_job(app: &TestApp, key: &Key, offset: i64) -> String {
    let (start, end) = window();
    submit_window_summary(app, key, (start + offset, end)).await
}

#[sqlx::test(migrations = "../migrations")]
async fn without_a_token_the_console_is_off(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in [
        "/admin",
        "/admin/",
        "/admin/assets/console.js",
        "/admin/api/overview",
    ] {
        let (status, _) = app.get_path(path).await;
        assert_eq!(status, 404, "{path}");
    }
    let response = app
        .http
        .post(format!("{}admin/login", app.url()))
        .form(&[("token", "anything")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn every_endpoint_wants_the_token(pool: PgPool) {
    let console = console(pool).await;
    let key = console.app.create_key(1).await;
    let job = queued_job(&console.app, &key, 0).await;
    let reads: Vec<String> = READS
        .iter()
        .map(|p| (*p).to_owned())
        .chain([
            format!("admin/api/jobs/{job}"),
            format!("admin/api/jobs/{job}/link"),
        ])
        .collect();
    for path in &reads {
        let response = console.http.get(console.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let forged = console
            .http
            .get(console.url(path))
            .header("Cookie", "ordersum_admin=v1.99999999999.00.00")
            .send()
            .await
            .unwrap();
        assert_eq!(
            forged.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a forged cookie"
        );
    }
    for action in ["cancel", "retry"] {
        let (status, _) = console
            .post(&format!("admin/api/jobs/{job}/{action}"), HeaderMap::new())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{action}");
    }
    assert_eq!(console.public_status(&key, &job).await, "Queued");
    for path in READS {
        let (status, body) = console.get_bearer(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let response = console
        .http
        .get(console.url("admin/api/overview"))
        .bearer_auth("not-the-operator-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn signing_in_sets_an_http_only_strict_session_cookie(pool: PgPool) {
    let console = console(pool).await;
    let page = console.http.get(console.url("admin")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let body = page.text().await.unwrap();
    assert!(
        body.contains("action=\"/admin/login\"") && body.contains("name=\"token\""),
        "{body}"
    );

    let wrong = console.sign_in("not-the-operator-token").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(wrong.text().await.unwrap().contains("Wrong token."));

    let right = console.sign_in(TOKEN).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()["location"], "/admin");
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in [
        "ordersum_admin=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    assert!(
        !cookie.contains(TOKEN),
        "the cookie carries the token itself: {cookie}"
    );

    let session = console.session().await;
    assert_eq!(session.csrf.len(), 64, "{}", session.csrf);
    let overview = console
        .get_with_cookie("admin/api/overview", &session.cookie)
        .await;
    assert_eq!(overview.status(), StatusCode::OK);

    // Signing out clears the cookie, and only from the console's own page.
    let out = console
        .http
        .post(console.url("admin/logout"))
        .header("Cookie", &session.cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::FORBIDDEN);
    let out = console
        .http
        .post(console.url("admin/logout"))
        .header("Cookie", &session.cookie)
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("ordersum_admin=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The session itself has ended, not only the browser's copy of it.
    let replayed = console
        .get_with_cookie("admin/api/overview", &session.cookie)
        .await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let page = console
        .get_with_cookie("admin", &session.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("action=\"/admin/login\""), "{page}");

    // A browser hiding the form's origin (`Origin: null`) is believed only
    // with its own Sec-Fetch-Site.
    for (site, expected) in [
        ("same-origin", StatusCode::SEE_OTHER),
        ("cross-site", StatusCode::FORBIDDEN),
    ] {
        let response = console
            .http
            .post(console.url("admin/login"))
            .header("Origin", "null")
            .header("Sec-Fetch-Site", site)
            .form(&[("token", TOKEN)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "Sec-Fetch-Site: {site}");
    }

    // A sign-in posted by another site's page is refused.
    let forged = console
        .http
        .post(console.url("admin/login"))
        .header("Origin", "http://evil.example")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get("set-cookie").is_none());
}

#[sqlx::test(migrations = "../migrations")]
async fn wrong_tokens_are_limited_then_refused_even_when_right(pool: PgPool) {
    let console = console(pool).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(console.sign_in("a-wrong-guess-of-the-token").await.status());
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    let right = console.sign_in(TOKEN).await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("Too many wrong tokens")
    );
    let (status, body) = console.get_bearer("admin/api/overview").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_cancel_needs_the_csrf_token_and_this_origin_and_the_customer_sees_it(pool: PgPool) {
    let console = console(pool).await;
    let key = console.app.create_key(1).await;
    let job = queued_job(&console.app, &key, 0).await;
    let session = console.session().await;
    let path = format!("admin/api/jobs/{job}/cancel");

    let mut no_csrf = console.page_headers(&session);
    no_csrf.remove("X-CSRF-Token");
    let mut wrong_csrf = console.page_headers(&session);
    wrong_csrf.insert("X-CSRF-Token", HeaderValue::from_static("0000"));
    let mut other_origin = console.page_headers(&session);
    other_origin.insert("Origin", HeaderValue::from_static("http://evil.example"));
    let mut other_site = console.page_headers(&session);
    other_site.insert("Sec-Fetch-Site", HeaderValue::from_static("cross-site"));
    for (what, headers) in [
        ("no CSRF token", no_csrf),
        ("a wrong CSRF token", wrong_csrf),
        ("another origin", other_origin),
        ("another site", other_site),
    ] {
        let (status, body) = console.post(&path, headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(console.public_status(&key, &job).await, "Queued", "{what}");
    }

    let (status, body) = console.post_as_page(&session, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["job"]["status"], "cancelled");
    assert_eq!(console.public_status(&key, &job).await, "Cancelled");
    let (status, body) = console.post_as_page(&session, &path).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // A script with the Bearer token needs no CSRF token.
    let second = queued_job(&console.app, &key, 60).await;
    let mut bearer = HeaderMap::new();
    bearer.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    let (status, body) = console
        .post(&format!("admin/api/jobs/{second}/cancel"), bearer)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(console.public_status(&key, &second).await, "Cancelled");
    let (status, _) = console
        .post_as_page(
            &session,
            "admin/api/jobs/00000000-0000-0000-0000-000000000000/cancel",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_retry_is_a_new_job_of_the_same_request_that_runs_and_downloads(pool: PgPool) {
    let console = console(pool.clone()).await;
    seed(&pool, 1, 300, 2, 7).await;
    let key = console.app.create_key(1).await;
    let failed = queued_job(&console.app, &key, 0).await;
    // As a worker leaves a job that failed for good.
    sqlx::query(
        "UPDATE summary_jobs SET status = 'failed', attempts = 3, finished_at = now(), \
         error_message = 'The order summary could not be produced.' WHERE id = $1::uuid",
    )
    .bind(&failed)
    .execute(&pool)
    .await
    .unwrap();
    let session = console.session().await;
    let queued = queued_job(&console.app, &key, 60).await;
    let (status, body) = console
        .post_as_page(&session, &format!("admin/api/jobs/{queued}/retry"))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a queued job is not retried: {body}"
    );

    let (status, body) = console
        .post_as_page(&session, &format!("admin/api/jobs/{failed}/retry"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let retry = body["job"]["id"].as_str().unwrap().to_owned();
    assert_ne!(retry, failed);
    assert_eq!(body["job"]["retry_of"], failed.as_str());
    assert_eq!(body["job"]["company_id"], 1);
    let (status, again) = console
        .post_as_page(&session, &format!("admin/api/jobs/{failed}/retry"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["job_id"], retry.as_str(), "the live retry is named");

    let requests: Vec<(String, String)> = sqlx::query_as(
        "SELECT request::text, request_hash FROM summary_jobs WHERE id IN ($1::uuid, $2::uuid)",
    )
    .bind(&failed)
    .bind(&retry)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        requests[0], requests[1],
        "the retry asks for the same summary"
    );

    // The customer sees the new job and the old one as it was.
    assert_eq!(console.public_status(&key, &failed).await, "Failed");
    let worker = spawn_worker(&console.app, |_| {}).await;
    let ended = wait_until_ended(&console.app, &key, &retry).await;
    assert_eq!(ended["Status"], "Succeeded", "{ended}");

    let (status, page) = console
        .get_bearer(&format!("admin/api/jobs/{failed}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["retries"], serde_json::json!([retry]));
    assert_eq!(page["can_retry"], true);
    let (status, link) = console
        .get_bearer(&format!("admin/api/jobs/{retry}/link"))
        .await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let file = console
        .http
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    let bytes = file.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK", "an xlsx is a zip");
    assert_eq!(bytes.len() as i64, link["file_size"].as_i64().unwrap());
    let (status, _) = console
        .get_bearer(&format!("admin/api/jobs/{failed}/link"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a failed job has no file");
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_job_page_shows_its_request_attempts_timeline_and_file(pool: PgPool) {
    let console = console(pool.clone()).await;
    seed(&pool, 3, 200, 2, 3).await;
    let key = console.app.create_key(3).await;
    let worker = spawn_worker(&console.app, |_| {}).await;
    let (start, end) = window();
    let job = submit_window_summary(&console.app, &key, (start, end)).await;
    let ended = wait_until_ended(&console.app, &key, &job).await;
    assert_eq!(ended["Status"], "Succeeded", "{ended}");

    let (status, page) = console.get_bearer(&format!("admin/api/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["request"]["StartTime"], start);
    assert_eq!(page["request"]["EndTime"], end);
    let row = &page["job"];
    assert_eq!(row["status"], "succeeded");
    assert_eq!(row["progress"], 1.0);
    assert_eq!(row["worker_id"], worker.ctx.worker_id.as_str());
    assert_eq!(row["paid_rows"], ended["Progress"]["PaidRows"]);
    assert_eq!(row["unpaid_rows"], ended["Progress"]["UnpaidRows"]);
    assert!(
        row["file_name"].as_str().unwrap().ends_with(".xlsx"),
        "{row}"
    );
    assert!(row["file_size"].as_i64().unwrap() > 0);
    assert!(row["run_secs"].as_f64().unwrap() >= 0.0);
    assert_eq!(page["attempts"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["attempts"][0]["outcome"], "succeeded");
    let events: Vec<&str> = page["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "created",
            "attempt 1 started",
            "attempt 1 ended: succeeded",
            "finished: succeeded"
        ]
    );
    assert_eq!(
        (
            page["can_cancel"].clone(),
            page["can_retry"].clone(),
            page["can_download"].clone()
        ),
        (Value::Bool(false), Value::Bool(false), Value::Bool(true))
    );
    worker.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_running_job_shows_its_worker_progress_and_a_stale_worker_is_marked(pool: PgPool) {
    let console = console(pool.clone()).await;
    seed(&pool, 5, 3_000, 2, 5).await;
    let key = console.app.create_key(5).await;
    let worker = spawn_worker(&console.app, |s| s.page_size = 100).await;
    let mut gate = OrdersGate::close(&console.app).await;
    let job = queued_job(&console.app, &key, 0).await;
    let written = gate.hold_mid_export(&job).await;
    assert!(written > 0);
    // The progress reported with the rows (the heartbeat writes both).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let row = loop {
        let (_, list) = console.get_bearer("admin/api/jobs?status=running").await;
        let row = list["jobs"][0].clone();
        if row["progress"].as_f64().is_some_and(|p| p > 0.0) {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no progress shown: {list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(row["id"], job.as_str());
    assert!(row["progress"].as_f64().unwrap() < 1.0, "{row}");

    let (status, workers) = console.get_bearer("admin/api/workers").await;
    assert_eq!(status, StatusCode::OK);
    let listed = &workers["workers"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{workers}");
    assert_eq!(listed[0]["id"], worker.ctx.worker_id.as_str());
    assert_eq!(listed[0]["jobs_in_hand"], serde_json::json!([job]));
    assert_eq!(listed[0]["stale"], false);
    assert_eq!(listed[0]["pid"], std::process::id());

    let (_, companies) = console.get_bearer("admin/api/companies").await;
    assert_eq!(companies["companies"][0]["company_id"], 5);
    assert_eq!(companies["companies"][0]["running"], 1);
    assert_eq!(
        companies["companies"][0]["cap"],
        console.app.settings.max_active_jobs
    );

    // A worker that stops beating is marked stale.
    sqlx::query("UPDATE workers SET heartbeat_at = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .unwrap();
    let (_, workers) = console.get_bearer("admin/api/workers").await;
    assert_eq!(workers["workers"][0]["stale"], true, "{workers}");
    gate.open().await;
    let ended = wait_until_ended(&console.app, &key, &job).await;
    assert_eq!(ended["Status"], "Succeeded");
    // A worker that stops cleanly leaves the list.
    worker.stop().await;
    let (_, workers) = console.get_bearer("admin/api/workers").await;
    assert_eq!(workers["workers"], serde_json::json!([]), "{workers}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_overview_and_the_job_list_count_and_filter_jobs(pool: PgPool) {
    let console = console(pool.clone()).await;
    let (one, two) = (
        console.app.create_key(11).await,
        console.app.create_key(12).await,
    );
    let mut jobs = Vec::new();
    for offset in 0..3 {
        jobs.push(queued_job(&console.app, &one, offset * 60).await);
    }
    jobs.push(queued_job(&console.app, &two, 0).await);
    let session = console.session().await;
    let (status, _) = console
        .post_as_page(&session, &format!("admin/api/jobs/{}/cancel", jobs[0]))
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, overview) = console.get_bearer("admin/api/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(overview["statuses"]["queued"], 3, "{overview}");
    assert_eq!(overview["statuses"]["cancelled"], 1);
    assert_eq!(overview["statuses"]["failed"], 0);
    assert_eq!(overview["queue_depth"], 3);
    assert!(overview["oldest_queued_age_secs"].as_f64().unwrap() >= 0.0);
    let minutes = overview["last_hour"]["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    assert_eq!(overview["last_hour"]["cancelled"], 1);

    let ids = |list: &Value| -> Vec<String> {
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = console.get_bearer("admin/api/jobs").await;
    let newest_first: Vec<String> = jobs.iter().rev().cloned().collect();
    assert_eq!(ids(&all), newest_first);
    let (_, of_one) = console
        .get_bearer("admin/api/jobs?company=11&status=queued")
        .await;
    assert_eq!(ids(&of_one), [jobs[2].clone(), jobs[1].clone()]);
    let (_, active) = console
        .get_bearer("admin/api/jobs?status=active&company=12")
        .await;
    assert_eq!(ids(&active), [jobs[3].clone()]);
    let (_, future) = console
        .get_bearer("admin/api/jobs?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(ids(&future), Vec::<String>::new());
    let (_, past) = console.get_bearer("admin/api/jobs?until=946684800").await;
    assert_eq!(ids(&past), Vec::<String>::new());
    for bad in ["status=done", "company=x", "since=yesterday", "limit=0"] {
        let (status, body) = console.get_bearer(&format!("admin/api/jobs?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (_, companies) = console.get_bearer("admin/api/companies").await;
    let first = &companies["companies"][0];
    assert_eq!(
        (first["company_id"].clone(), first["active"].clone()),
        (11.into(), 2.into())
    );
}
