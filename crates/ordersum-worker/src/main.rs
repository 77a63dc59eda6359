use clap::Parser;
use ordersum_model::runtime::{init_tracing, shutdown_signal};
use ordersum_worker::{Settings, startup};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    init_tracing(settings.log_format);
    let pool = startup::connect_database(&settings).await?;
    let ctx = startup::job_context(settings, pool).await?;
    startup::run(ctx, shutdown_signal()).await
}
