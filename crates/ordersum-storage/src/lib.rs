//! Where finished summaries live: an S3-compatible bucket (UCloud US3, MinIO,
//! AWS; through rust-s3) or a local directory whose files the API serves
//! behind HMAC-signed, expiring URLs. Both give a download URL that works with
//! a plain HTTP GET and expires after a TTL.

mod local;
mod pipe;
mod s3;

use std::time::Duration;

pub use local::{LocalStore, SignedFile};
pub use pipe::{PipeReader, PipeWriter, pipe};
pub use s3::S3Store;
pub use secrecy::{ExposeSecret, SecretString};

/// Content type of the workbooks.
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Storage settings shared by the API (presigning, serving local files) and
/// the worker (uploading). The secrets are [`SecretString`]s: `Debug` leaves
/// them out.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageSettings {
    /// Where summaries are stored: `file:///dir` or
    /// `s3://bucket[/prefix]?endpoint=URL&region=R`. Without an endpoint the
    /// store is AWS; with one, path-style unless `path_style=false`.
    /// `public_endpoint=URL`: where customers reach the same store when
    /// ordersum uses an internal address (e.g. `s3:9000` in compose);
    /// download links are signed for it.
    #[arg(
        long = "storage",
        env = "ORDERSUM_STORAGE",
        default_value = "file:///var/lib/ordersum"
    )]
    pub url: String,
    /// Base of local download links (file:// only); default `http://` + the API address.
    #[arg(long, env = "ORDERSUM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// HMAC key of local download links, at least 32 bytes (`openssl rand
    /// -hex 32`); the same on every API replica. Default: random per process.
    #[arg(long, env = "ORDERSUM_URL_SECRET", hide_env_values = true, value_parser = secret_text)]
    pub url_secret: Option<SecretString>,
    /// Lifetime of a download link in seconds, re-issued on every poll.
    #[arg(
        long = "url-ttl-seconds",
        env = "ORDERSUM_URL_TTL_SECONDS",
        default_value_t = 900,
        // A presigned URL lives at most 7 days (SigV4).
        value_parser = ordersum_runtime::in_range(1..=7 * 24 * 3600u64)
    )]
    pub url_ttl_secs: u64,
    /// S3 access key (s3:// only).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: Option<String>,
    /// S3 secret key (s3:// only).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, value_parser = secret_text)]
    pub secret_access_key: Option<SecretString>,
    /// Parts uploaded at once in a multipart upload (each part 8 MiB).
    #[arg(long, env = "ORDERSUM_S3_UPLOAD_CONCURRENCY", default_value_t = 2,
          value_parser = ordersum_runtime::in_range(1..=64usize))]
    pub upload_concurrency: usize,
}

/// Takes the text as is: a parse error here would make clap print the value.
fn secret_text(value: &str) -> std::result::Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

impl StorageSettings {
    /// Settings for `url` with every other default.
    pub fn new(url: impl Into<String>) -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            storage: StorageSettings,
        }
        let url = url.into();
        ordersum_runtime::defaults_of::<Only>(&["storage", "--storage", &url]).storage
    }

    pub fn url_ttl(&self) -> Duration {
        Duration::from_secs(self.url_ttl_secs)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage configuration: {0}")]
    Config(String),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("S3: {0}")]
    S3(#[from] ::s3::error::S3Error),
}

impl StorageError {
    /// Whether trying again later may succeed (the store was unreachable or
    /// answered 5xx), as opposed to a configuration or permission problem.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Config(_) => false,
            StorageError::Io(_) => true,
            StorageError::S3(err) => s3::is_retryable(err),
        }
    }

    /// The store stopped because the pipe's writer gave up before finishing:
    /// the writer's error, not this one, is the cause.
    pub fn is_writer_gave_up(&self) -> bool {
        match self {
            StorageError::Io(err) | StorageError::S3(::s3::error::S3Error::Io(err)) => {
                pipe::is_writer_gave_up(err)
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// An object store.
#[derive(Debug, Clone)]
pub enum Store {
    Local(LocalStore),
    S3(S3Store),
}

impl Store {
    /// Opens the store `settings.url` names. `default_public_url` is the base
    /// of local download links when `ORDERSUM_PUBLIC_URL` is not set.
    pub fn open(settings: &StorageSettings, default_public_url: &str) -> Result<Store> {
        let url = url::Url::parse(&settings.url)
            .map_err(|err| StorageError::Config(format!("ORDERSUM_STORAGE is not a URL: {err}")))?;
        match url.scheme() {
            "file" => Ok(Store::Local(LocalStore::open(
                &url,
                settings,
                default_public_url,
            )?)),
            "s3" => Ok(Store::S3(S3Store::open(&url, settings)?)),
            other => Err(StorageError::Config(format!(
                "ORDERSUM_STORAGE scheme {other:?} is not supported (file:// or s3://)"
            ))),
        }
    }

    /// The key of the file of one attempt at a job:
    /// `{prefix}/{company}/{job}/{attempt}/{file name}`. Each attempt has its
    /// own, so an attempt that lost its job (taken back by another worker)
    /// can only ever overwrite or delete its own object, never the winner's.
    pub fn object_key(
        &self,
        company_id: i64,
        job_id: impl std::fmt::Display,
        attempt: i32,
        file_name: &str,
    ) -> String {
        let job = self.job_prefix(company_id, job_id);
        format!("{job}{attempt}/{file_name}")
    }

    /// The prefix every attempt's key of a job starts with:
    /// `{prefix}/{company}/{job}/` (the slash keeps one job's prefix from
    /// matching another's).
    fn job_prefix(&self, company_id: i64, job_id: impl std::fmt::Display) -> String {
        let prefix = match self {
            Store::Local(_) => "summaries",
            Store::S3(store) => store.prefix(),
        };
        format!("{prefix}/{company_id}/{job_id}/")
    }

    /// Stores what `source` delivers under `key` as it arrives; answers its
    /// size. The object is complete when this returns, and absent or
    /// unchanged when it fails (the writer gave up, or the store failed).
    pub async fn put_stream(&self, key: &str, source: PipeReader, file_name: &str) -> Result<u64> {
        match self {
            Store::Local(store) => store.put_stream(key, source).await,
            Store::S3(store) => store.put_stream(key, source, file_name).await,
        }
    }

    /// A download URL for `key`, valid for `ttl`.
    pub async fn presign(&self, key: &str, file_name: &str, ttl: Duration) -> Result<String> {
        match self {
            Store::Local(store) => Ok(store.presign(key, ttl)),
            Store::S3(store) => store.presign(key, file_name, ttl).await,
        }
    }

    /// Removes `key`; removing a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Store::Local(store) => store.delete(key).await,
            Store::S3(store) => store.delete(key).await,
        }
    }

    /// Removes every object of a job, whichever attempt wrote it (an attempt
    /// whose worker died after uploading, or that lost its job and failed to
    /// delete its own, leaves one the row does not record); answers how many.
    /// A job with no object is not an error.
    pub async fn delete_job_objects(
        &self,
        company_id: i64,
        job_id: impl std::fmt::Display,
    ) -> Result<usize> {
        let prefix = self.job_prefix(company_id, job_id);
        match self {
            Store::Local(store) => store.delete_prefix(&prefix).await,
            Store::S3(store) => store.delete_prefix(&prefix).await,
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self {
            Store::Local(store) => store.exists(key).await,
            Store::S3(store) => store.exists(key).await,
        }
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn check(&self) -> Result<()> {
        match self {
            Store::Local(store) => store.check().await,
            Store::S3(store) => store.check().await,
        }
    }
}

/// `Content-Disposition` of a download named `file_name`.
pub fn content_disposition(file_name: &str) -> String {
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("attachment; filename=\"{safe}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_debug_leaves_the_secrets_out() {
        let mut settings = StorageSettings::new("s3://bucket");
        settings.url_secret = Some("link-hmac-secret-0123456789abcdef".into());
        settings.access_key_id = Some("AKIAEXAMPLE".into());
        settings.secret_access_key = Some("s3-secret-access-key".into());
        let printed = format!("{settings:?}");
        assert!(!printed.contains("link-hmac-secret"), "{printed}");
        assert!(!printed.contains("s3-secret-access-key"), "{printed}");
        assert!(printed.contains("AKIAEXAMPLE"), "{printed}");
    }
}
