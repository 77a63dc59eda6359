use clap::Parser;
use ordersum_api::{Application, Settings, shutdown_signal};
use ordersum_runtime::init_tracing;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    init_tracing(settings.backends.log_format);
    settings.validate()?;
    let app = Application::connect(settings).await?;
    tracing::info!(addr = %app.local_addr()?, "ordersum-api listening");
    app.run_until(shutdown_signal()).await?;
    tracing::info!("ordersum-api stopped");
    Ok(())
}
