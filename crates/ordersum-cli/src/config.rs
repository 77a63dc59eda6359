//! `ordersum config`: the configuration reference, read off the API's and
//! the worker's settings declarations (`ordersum_runtime::documented`). The
//! checked-in `.env.example`, `docs/configuration.md`'s table and README's
//! short table are this command's output; a test fails when they drift.

use clap::CommandFactory;
use ordersum_runtime::SettingDoc;

/// What to print.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ConfigArgs {
    /// Every setting as a Markdown table (docs/configuration.md).
    #[arg(long)]
    pub markdown: bool,
    /// Every setting as an env file, set to its default (.env.example).
    #[arg(long)]
    pub env: bool,
    /// The settings a new deployment must think about (README.md).
    #[arg(long)]
    pub summary: bool,
}

/// The settings README.md shows, in its order.
pub const FEATURED: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "ORDERSUM_STORAGE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "ORDERSUM_URL_SECRET",
    "ORDERSUM_API_ADDR",
    "ORDERSUM_WORKER_METRICS_ADDR",
    "ORDERSUM_ADMIN_TOKEN",
    "ORDERSUM_KEY_ENCRYPTION_KEYS",
    "ORDERSUM_WORKER_CONCURRENCY",
    "ORDERSUM_MAX_ACTIVE_JOBS",
    "ORDERSUM_LOG_FORMAT",
];

const ENV_HEADER: &str = "\
# ordersum configuration, written by `ordersum config --env` from the
# settings' declarations (edit those, not this file). Every variable is
# optional; the value shown is the default, and a commented-out one has no
# default (set it to use it: an empty value is not the same as unset). Copy
# to .env (ignored by git) or set them in the environment.

# Logs are filtered with RUST_LOG (tracing's EnvFilter syntax).
RUST_LOG=info
";

/// Every setting of `ordersum-api` and `ordersum-worker`.
pub fn settings() -> Vec<SettingDoc> {
    ordersum_runtime::documented(&[
        ("ordersum-api", ordersum_api::Settings::command()),
        ("ordersum-worker", ordersum_worker::Settings::command()),
    ])
}

pub fn markdown() -> String {
    ordersum_runtime::markdown_table(&settings())
}

pub fn env_file() -> String {
    ordersum_runtime::env_file(ENV_HEADER, &settings())
}

pub fn summary() -> String {
    ordersum_runtime::summary_table(&settings(), FEATURED)
}

pub fn run(args: &ConfigArgs) {
    let text = match (args.markdown, args.env) {
        (true, _) => markdown(),
        (_, true) => env_file(),
        _ => summary(),
    };
    print!("{text}");
}
