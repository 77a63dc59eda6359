//! The worker's webhook deliverer: every worker runs one. It claims due
//! deliveries from the outbox (woken by the job-end trigger's `NOTIFY`, or
//! every poll interval for retries falling due), sends each, signed, on a
//! task of its own, and records the attempt. Postgres holds the state, so a
//! worker that dies loses nothing: its leases run out and another worker
//! tries again.

mod deliver;
pub mod metrics;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use ordersum_model::store::{deliveries, webhooks::CHANNEL};
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, Semaphore};

use crate::context::JobContext;

pub use settings::DeliverySettings;

/// Runs until aborted (the worker aborts it at shutdown; a delivery cut off
/// is tried again once its lease runs out).
pub async fn run(ctx: Arc<JobContext>) {
    let settings = &ctx.settings.webhooks;
    let cipher = match settings.key_encryption.cipher() {
        Ok(cipher) => Arc::new(cipher),
        Err(err) => {
            tracing::error!(error = %err, "ORDERSUM_KEY_ENCRYPTION_KEYS unreadable: not delivering webhooks");
            return;
        }
    };
    let policy = Arc::new(settings.policy.policy());
    let slots = Arc::new(Semaphore::new(settings.webhook_concurrency));
    let freed = Arc::new(Notify::new());
    let mut listener: Option<PgListener> = None;
    let mut last_gauges = tokio::time::Instant::now() - Duration::from_secs(60);
    loop {
        if listener.is_none() {
            listener = listen(&ctx).await;
        }
        if last_gauges.elapsed() >= Duration::from_secs(5) {
            last_gauges = tokio::time::Instant::now();
            if let Ok((pending, oldest)) = deliveries::backlog(&ctx.pool).await {
                metrics::backlog(pending, oldest);
            }
        }
        let free = slots.available_permits();
        let mut claimed = 0;
        if free > 0 {
            match deliveries::claim_due(&ctx.pool, &ctx.worker_id, free as i64, settings.lease())
                .await
            {
                Ok(batch) => {
                    claimed = batch.len();
                    for due in batch {
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            break;
                        };
                        let (ctx, policy, cipher, freed) =
                            (ctx.clone(), policy.clone(), cipher.clone(), freed.clone());
                        tokio::spawn(async move {
                            deliver::one(&ctx, &policy, &cipher, due).await;
                            drop(permit);
                            freed.notify_one();
                        });
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not claim webhook deliveries"),
            }
        }
        if claimed > 0 && claimed == free {
            // There may be more due: look again as soon as a slot is free.
            freed.notified().await;
            continue;
        }
        wait(&mut listener, &freed, settings.poll(), free == 0).await;
    }
}

/// A listener on the deliverers' channel, or `None` (then the poll interval
/// alone finds work, and the next round tries again).
async fn listen(ctx: &JobContext) -> Option<PgListener> {
    let connect = async {
        let mut listener = PgListener::connect_with(&ctx.direct).await?;
        listener.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match connect.await {
        Ok(listener) => Some(listener),
        Err(err) => {
            tracing::warn!(error = %err, "webhook deliverer cannot LISTEN; polling");
            None
        }
    }
}

/// Waits for a job end's notification, the poll interval, or (when every
/// slot was busy) a slot to free.
async fn wait(listener: &mut Option<PgListener>, freed: &Notify, poll: Duration, full: bool) {
    let notified = async {
        match listener.as_mut() {
            Some(l) => match l.try_recv().await {
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "webhook deliverer lost its LISTEN connection");
                    *listener = None;
                }
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = notified => {}
        () = tokio::time::sleep(poll) => {}
        () = freed.notified(), if full => {}
    }
}
