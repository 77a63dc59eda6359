//! ordersum's API: a thin axum service speaking UCloud's Action protocol. It
//! parses, authenticates and validates `DownloadOrderSummary`, records the
//! job in Postgres, pushes its id to Redis through apalis, and answers polls.

pub mod actions;
pub mod admin;
pub mod answers;
pub mod error;
pub mod files;
pub mod health;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod ratelimit;
pub mod replay;
pub mod server;
pub mod settings;
pub mod startup;
pub mod state;
pub mod watch;
pub mod webhooks;
pub mod wire;

pub use settings::Settings;
pub use startup::Application;

pub use ordersum_runtime::shutdown_signal;
