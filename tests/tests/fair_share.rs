//! The order workers take queued jobs in (`store::attempts::claim_next`): every
//! company's first job before any company's second, however the burst was
//! submitted; a job waiting for its retry is not taken early; the cap on a
//! company's active jobs holds in the same statement that inserts.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ordersum_model::store;
use ordersum_model::{Job, Limits, Params, SummaryRequest};
use sqlx::PgPool;
use uuid::Uuid;

const STEP: Duration = Duration::from_secs(10);
const CAP: i64 = 100;

/// Submits a job of `company` for its `n`-th distinct window, as the API does.
async fn submit(pool: &PgPool, company: i64, n: i64, step: Duration) -> Option<Job> {
    let start = (100 + n).to_string();
    let params = Params::from_pairs([("StartTime", start.as_str()), ("EndTime", "10000")]);
    let request = SummaryRequest::from_params(&params, &Limits::default()).unwrap();
    let mut tx = pool.begin().await.unwrap();
    store::jobs::lock_company(&mut tx, company).await.unwrap();
    let job = store::jobs::insert_job(&mut tx, Uuid::now_v7(), company, &request, CAP, step)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    job
}

/// Claims every due queued job; answers the companies in the order taken.
async fn drain(pool: &PgPool) -> Vec<i64> {
    let mut order = Vec::new();
    while let Some(job) = store::attempts::claim_next(pool, "worker", Default::default())
        .await
        .unwrap()
    {
        order.push(job.company_id);
    }
    order
}

#[sqlx::test(migrations = "../migrations")]
async fn a_company_that_submits_after_another_s_whole_batch_still_goes_second(pool: PgPool) {
    for n in 0..5 {
        submit(&pool, 1, n, STEP).await.unwrap();
    }
    for company in 2..=4 {
        for n in 0..2 {
            submit(&pool, company, n, STEP).await.unwrap();
        }
    }
    assert_eq!(drain(&pool).await, [1, 2, 3, 4, 1, 2, 3, 4, 1, 1, 1]);
}

#[sqlx::test(migrations = "../migrations")]
async fn running_jobs_count_against_a_company_s_place_in_line(pool: PgPool) {
    submit(&pool, 1, 0, STEP).await.unwrap();
    // Company 1's first job is running when it submits its second.
    assert_eq!(drain(&pool).await, [1]);
    submit(&pool, 1, 1, STEP).await.unwrap();
    submit(&pool, 2, 0, STEP).await.unwrap();
    assert_eq!(drain(&pool).await, [2, 1]);
}

#[sqlx::test(migrations = "../migrations")]
async fn with_no_step_jobs_are_taken_first_come_first_served(pool: PgPool) {
    for n in 0..3 {
        submit(&pool, 1, n, Duration::ZERO).await.unwrap();
    }
    submit(&pool, 2, 0, Duration::ZERO).await.unwrap();
    assert_eq!(drain(&pool).await, [1, 1, 1, 2]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_job_waiting_for_its_retry_is_not_taken_before_its_time(pool: PgPool) {
    let waiting = submit(&pool, 1, 0, STEP).await.unwrap();
    let later = submit(&pool, 2, 0, STEP).await.unwrap();
    sqlx::query("UPDATE summary_jobs SET retry_at = now() + interval '1 hour' WHERE id = $1")
        .bind(waiting.id)
        .execute(&pool)
        .await
        .unwrap();
    let taken = store::attempts::claim_next(&pool, "worker", Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, later.id);
    assert!(
        store::attempts::claim_next(&pool, "worker", Default::default())
            .await
            .unwrap()
            .is_none()
    );
    sqlx::query("UPDATE summary_jobs SET retry_at = now() - interval '1 second' WHERE id = $1")
        .bind(waiting.id)
        .execute(&pool)
        .await
        .unwrap();
    let taken = store::attempts::claim_next(&pool, "worker", Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, waiting.id);
    assert_eq!(taken.attempts, 1);
    assert_eq!(taken.worker_id.as_deref(), Some("worker"));
}

#[sqlx::test(migrations = "../migrations")]
async fn two_workers_claiming_at_once_never_take_the_same_job(pool: PgPool) {
    for n in 0..20 {
        submit(&pool, n % 4, n, STEP).await.unwrap();
    }
    let take = |worker: &'static str| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            while let Some(job) = store::attempts::claim_next(&pool, worker, Default::default())
                .await
                .unwrap()
            {
                ids.push(job.id);
            }
            ids
        })
    };
    let (a, b) = (take("a"), take("b"));
    let mut all: Vec<Uuid> = a.await.unwrap();
    all.extend(b.await.unwrap());
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!((count, all.len()), (20, 20));
}

#[sqlx::test(migrations = "../migrations")]
async fn the_cap_is_checked_by_the_insert_itself(pool: PgPool) {
    let params = Params::from_pairs([("StartTime", "100"), ("EndTime", "200")]);
    let request = SummaryRequest::from_params(&params, &Limits::default()).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for _ in 0..2 {
        assert!(
            store::jobs::insert_job(&mut conn, Uuid::now_v7(), 7, &request, 2, STEP)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        store::jobs::insert_job(&mut conn, Uuid::now_v7(), 7, &request, 2, STEP)
            .await
            .unwrap()
            .is_none()
    );
    // Another company is not held back by company 7's cap.
    assert!(
        store::jobs::insert_job(&mut conn, Uuid::now_v7(), 8, &request, 2, STEP)
            .await
            .unwrap()
            .is_some()
    );
}
