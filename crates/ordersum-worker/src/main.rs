use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
use ordersum_runtime::{init_tracing, shutdown_signal};
use ordersum_worker::settings::MetricsAddr;
use ordersum_worker::{Settings, startup};

fn main() -> std::process::ExitCode {
    startup::tune_allocator();
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run()));
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line, causes joined: what an operator reads in a pod's
            // last state.
            eprintln!("ordersum-worker: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let matches = Settings::command().get_matches();
    let metrics_explicit = matches.value_source("metrics_addr") != Some(ValueSource::DefaultValue);
    let mut settings = Settings::from_arg_matches(&matches)
        .unwrap_or_else(|err| err.exit())
        .without_empty_values();
    init_tracing(settings.backends.log_format);
    settings.validate()?;
    let worker_id = settings
        .worker_id
        .get_or_insert_with(startup::default_worker_id)
        .clone();
    let bound = ordersum_worker::metrics::serve(settings.metrics_addr.0, metrics_explicit).await?;
    settings.metrics_addr = MetricsAddr(bound);
    let databases = startup::connect_database(&settings, &worker_id).await?;
    let ctx = startup::job_context(settings, databases).await?;
    startup::run(ctx, shutdown_signal()).await
}
