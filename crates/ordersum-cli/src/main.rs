//! `ordersum`: see the library crate for the subcommands.

use clap::Parser;
use ordersum_cli::{Cli, init_tracing, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    run(cli).await
}
