//! ordersum's worker: consumes job ids from Redis (apalis), claims each job
//! in Postgres, streams its orders page by page into a constant-memory Excel
//! workbook, uploads it to the object store and finishes the job.

pub mod columns;
pub mod context;
pub mod export;
pub mod metrics;
pub mod numeric;
pub mod orders;
pub mod registry;
pub mod replica;
pub mod runner;
pub mod settings;
pub mod startup;
pub mod sweeper;
pub mod webhooks;
pub mod workbook;

pub use settings::Settings;
