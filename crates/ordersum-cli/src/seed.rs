//! `ordersum seed`: fills `orders` with demo orders through `COPY`, and
//! upserts the `enum_labels` the summaries show.
//!
//! Rows are generated on a blocking thread into ~1 MiB text buffers that a
//! bounded channel hands to the COPY stream, so generation and I/O overlap and
//! memory stays constant whatever the row count.

mod catalog;
mod copy;
mod money;
mod orders;
mod usage;

use std::time::Instant;

use anyhow::{Context, bail};
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use sqlx::postgres::PgCopyIn;
use tokio::sync::mpsc;

use catalog::ENUM_LABELS;
use orders::{COPY_COLUMNS, OrderGenerator, OrderStatus, Plan};

/// A buffer is sent to Postgres once it holds this many bytes.
const BUFFER_BYTES: usize = 1 << 20;
/// Filled buffers waiting for the COPY stream.
const BUFFERS_IN_FLIGHT: usize = 4;

/// `ordersum seed` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Company (tenant) the orders belong to.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub company: i64,
    /// Number of orders to insert.
    #[arg(long)]
    pub orders: u64,
    /// Orders start within this many days before now.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_600))]
    pub days: u32,
    /// RNG seed, for reproducible orders (order numbers and the time anchor still vary).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Orders inserted, by status.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatusCounts {
    pub paid: u64,
    pub unpaid: u64,
    pub revoked: u64,
}

impl StatusCounts {
    fn record(&mut self, status: OrderStatus) {
        match status {
            OrderStatus::Paid => self.paid += 1,
            OrderStatus::Unpaid => self.unpaid += 1,
            OrderStatus::Revoked => self.revoked += 1,
        }
    }
}

/// Upserts the labels, inserts the orders and prints what was done.
pub async fn run(pool: &PgPool, args: SeedArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    upsert_enum_labels(pool)
        .await
        .context("upserting enum_labels")?;
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let now = Utc::now();
    let plan = Plan {
        company_id: args.company,
        days: args.days,
        now,
        order_no_prefix: format!(
            "SO{}-{}-",
            now.format("%y%m%d%H%M%S"),
            crate::random_lower_alnum(&mut rand::rng(), 6)
        ),
    };
    tracing::info!(
        company = args.company,
        orders = args.orders,
        days = args.days,
        seed,
        "seeding orders"
    );
    let generator = OrderGenerator::new(StdRng::seed_from_u64(seed), plan);
    let (inserted, counts) = copy_orders(pool, generator, args.orders).await?;
    println!(
        "inserted {inserted} orders for company {} (paid {}, unpaid {}, revoked {}) in {:.2} s; seed {seed}",
        args.company,
        counts.paid,
        counts.unpaid,
        counts.revoked,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `INSERT ... ON CONFLICT DO UPDATE` of every label, in one statement.
#[tracing::instrument(skip_all, err)]
async fn upsert_enum_labels(pool: &PgPool) -> Result<(), sqlx::Error> {
    let kinds: Vec<&str> = ENUM_LABELS.iter().map(|&(kind, _, _)| kind).collect();
    let values: Vec<i32> = ENUM_LABELS.iter().map(|&(_, value, _)| value).collect();
    let names: Vec<&str> = ENUM_LABELS.iter().map(|&(_, _, name)| name).collect();
    sqlx::query(
        r#"INSERT INTO enum_labels (kind, value, name)
           SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[])
           ON CONFLICT (kind, value) DO UPDATE SET name = EXCLUDED.name"#,
    )
    .bind(kinds)
    .bind(values)
    .bind(names)
    .execute(pool)
    .await
    .map(drop)
}

/// Streams `count` generated orders into one `COPY orders FROM STDIN`: all or
/// nothing. Returns the rows Postgres reports and the counts by status.
async fn copy_orders(
    pool: &PgPool,
    generator: OrderGenerator<StdRng>,
    count: u64,
) -> anyhow::Result<(u64, StatusCounts)> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let mut copy = conn
        .copy_in_raw(&format!("COPY orders ({COPY_COLUMNS}) FROM STDIN"))
        .await
        .context("starting COPY orders")?;
    let (sender, receiver) = mpsc::channel(BUFFERS_IN_FLIGHT);
    let producer = tokio::task::spawn_blocking(move || generate_rows(generator, count, sender));
    let sent = send_buffers(&mut copy, receiver).await;
    // The receiver is gone now, so a producer still running stops at its next buffer.
    let produced = producer
        .await
        .context("row generator panicked")
        .and_then(|counts| counts);
    match sent.and(produced) {
        Ok(counts) => {
            let rows = copy.finish().await.context("finishing COPY orders")?;
            Ok((rows, counts))
        }
        Err(error) => {
            if let Err(abort_error) = copy.abort("ordersum seed failed").await {
                tracing::warn!(error = %abort_error, "aborting COPY orders failed");
            }
            Err(error)
        }
    }
}

async fn send_buffers(
    copy: &mut PgCopyIn<&mut sqlx::PgConnection>,
    mut receiver: mpsc::Receiver<Vec<u8>>,
) -> anyhow::Result<()> {
    while let Some(buffer) = receiver.recv().await {
        copy.send(buffer)
            .await
            .context("sending rows to COPY orders")?;
    }
    Ok(())
}

/// Generates `count` rows into buffers of about [`BUFFER_BYTES`] and sends
/// them; runs on a blocking thread.
fn generate_rows(
    mut generator: OrderGenerator<StdRng>,
    count: u64,
    sender: mpsc::Sender<Vec<u8>>,
) -> anyhow::Result<StatusCounts> {
    let mut counts = StatusCounts::default();
    let mut buffer = String::with_capacity(BUFFER_BYTES + 1024);
    for _ in 0..count {
        let order = generator.next_order();
        counts.record(order.status);
        order
            .write_copy_row(&mut buffer)
            .context("formatting an order row")?;
        if buffer.len() >= BUFFER_BYTES {
            let full = std::mem::replace(&mut buffer, String::with_capacity(BUFFER_BYTES + 1024));
            if sender.blocking_send(full.into_bytes()).is_err() {
                bail!("the COPY stream stopped early");
            }
        }
    }
    if !buffer.is_empty() && sender.blocking_send(buffer.into_bytes()).is_err() {
        bail!("the COPY stream stopped early");
    }
    Ok(counts)
}
