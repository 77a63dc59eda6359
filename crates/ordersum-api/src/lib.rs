//! ordersum's API: a thin axum service speaking UCloud's Action protocol. It
//! parses, authenticates and validates `DownloadOrderSummary`, records the
//! job in Postgres, pushes its id to Redis through apalis, and answers polls.

pub mod actions;
pub mod error;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod wire;

pub use settings::Settings;
pub use startup::Application;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
