use clap::Parser;
use ordersum_runtime::{init_tracing, shutdown_signal};
use ordersum_worker::{Settings, startup};

fn main() -> anyhow::Result<()> {
    startup::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let mut settings = Settings::parse().without_empty_values();
    init_tracing(settings.backends.log_format);
    settings.validate()?;
    let worker_id = settings
        .worker_id
        .get_or_insert_with(startup::default_worker_id)
        .clone();
    ordersum_worker::metrics::serve(settings.metrics_addr.0).await?;
    let pool = startup::connect_database(&settings, &worker_id).await?;
    let ctx = startup::job_context(settings, pool).await?;
    startup::run(ctx, shutdown_signal()).await
}
