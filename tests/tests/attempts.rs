//! A job taken back from a worker can be handed to the same worker process
//! again (a redelivery after its heartbeat went stale). The old attempt,
//! when it resumes, must not be able to record progress on, fail, requeue
//! or finish the new one: every update of a running job names its attempt.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ordersum_model::store;
use ordersum_model::store::attempts::{Attempt, FinishedFile};
use ordersum_model::{JobStatus, Limits, Params, SummaryRequest};
use sqlx::PgPool;
use uuid::Uuid;

const WORKER: &str = "worker-a";
const STALE: Duration = Duration::from_secs(30);

async fn status(pool: &PgPool, id: Uuid) -> JobStatus {
    store::attempts::find_job(pool, id)
        .await
        .unwrap()
        .unwrap()
        .status
}

#[sqlx::test(migrations = "../migrations")]
async fn an_old_attempt_of_the_same_worker_cannot_touch_the_new_one(pool: PgPool) {
    let params = Params::from_pairs([("StartTime", "100"), ("EndTime", "200")]);
    let request = SummaryRequest::from_params(&params, &Limits::default()).unwrap();
    let mut tx = pool.begin().await.unwrap();
    let job = store::jobs::insert_job(&mut tx, Uuid::now_v7(), 1, &request, 5, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();

    let first = store::attempts::claim_job(&pool, job.id, WORKER, STALE, Default::default())
        .await
        .unwrap()
        .unwrap();
    // Its heartbeat goes stale; the sweeper takes the job back and the
    // same worker process is handed it again.
    sqlx::query("UPDATE summary_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1")
        .bind(job.id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        store::maintenance::requeue_stale_jobs(&pool, STALE)
            .await
            .unwrap(),
        vec![job.id]
    );
    let second = store::attempts::claim_job(&pool, job.id, WORKER, STALE, Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.attempts, first.attempts + 1);

    let old = Attempt {
        worker_id: WORKER,
        attempt: first.attempts,
    };
    assert!(
        !store::attempts::record_progress(&pool, job.id, old, 5, 5, None)
            .await
            .unwrap()
    );
    assert!(
        !store::attempts::fail_job(&pool, job.id, old, "boom")
            .await
            .unwrap()
    );
    assert!(
        !store::attempts::requeue_job(&pool, job.id, old, Duration::ZERO)
            .await
            .unwrap()
    );
    let file = FinishedFile {
        key: format!("summaries/1/{}/{}/old.xlsx", job.id, first.attempts),
        name: "old.xlsx".into(),
        size: 1,
        paid_rows: 0,
        unpaid_rows: 0,
    };
    assert!(
        !store::attempts::finish_job(&pool, job.id, old, &file, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(status(&pool, job.id).await, JobStatus::Running);

    let current = Attempt {
        worker_id: WORKER,
        attempt: second.attempts,
    };
    assert!(
        store::attempts::record_progress(&pool, job.id, current, 1, 2, None)
            .await
            .unwrap()
    );
    let file = FinishedFile {
        key: format!("summaries/1/{}/{}/new.xlsx", job.id, second.attempts),
        ..file
    };
    assert!(
        store::attempts::finish_job(&pool, job.id, current, &file, Duration::from_secs(60))
            .await
            .unwrap()
    );
    let done = store::attempts::find_job(&pool, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.file_key.as_deref(), Some(file.key.as_str()));
}
