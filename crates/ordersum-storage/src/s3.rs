//! An S3-compatible bucket through rust-s3: UCloud US3, MinIO, AWS, or any
//! endpoint and region, path-style or virtual-host addressing.

use std::collections::HashMap;
use std::time::Duration;

use s3::creds::Credentials;
use s3::error::S3Error;
use s3::{Bucket, Region};

use crate::{
    ExposeSecret, PipeReader, Result, StorageError, StorageSettings, XLSX_CONTENT_TYPE,
    content_disposition,
};

/// Longest presigned URL lifetime SigV4 allows (7 days).
const MAX_PRESIGN_SECS: u64 = 7 * 24 * 3600;
/// Bound on one S3 request (a part upload included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct S3Store {
    bucket: Box<Bucket>,
    /// The bucket as customers reach it (`public_endpoint`), for presigned
    /// URLs only; the same bucket when there is no such setting.
    public_bucket: Box<Bucket>,
    prefix: String,
    upload_concurrency: usize,
}

impl S3Store {
    /// `s3://bucket[/prefix]?endpoint=URL&region=R&path_style=true|false&public_endpoint=URL`.
    /// Without an endpoint the region's AWS endpoint is used; with one,
    /// path-style addressing is the default (MinIO and most test servers).
    /// `public_endpoint`: where customers reach the same server when it is not
    /// where ordersum reaches it (an internal endpoint in a cluster, `s3:9000`
    /// in compose); download links are signed for it.
    pub(crate) fn open(url: &url::Url, settings: &StorageSettings) -> Result<Self> {
        let name = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| StorageError::Config("s3:// URL names no bucket".into()))?;
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let region_name = query
            .get("region")
            .cloned()
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = query.get("endpoint").filter(|e| !e.is_empty());
        let region = match endpoint {
            Some(endpoint) => custom_region(&region_name, endpoint, "endpoint")?,
            None => region_name
                .parse()
                .map_err(|err| StorageError::Config(format!("S3 region {region_name:?}: {err}")))?,
        };
        let public_region = match query.get("public_endpoint").filter(|e| !e.is_empty()) {
            Some(public) => custom_region(&region_name, public, "public_endpoint")?,
            None => region.clone(),
        };
        let path_style = match query.get("path_style").map(String::as_str) {
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => {
                return Err(StorageError::Config(format!(
                    "path_style={other:?} is not true or false"
                )));
            }
            None => endpoint.is_some(),
        };
        let credentials = Credentials::new(
            settings.access_key_id.as_deref().filter(|k| !k.is_empty()),
            settings
                .secret_access_key
                .as_ref()
                .map(ExposeSecret::expose_secret)
                .filter(|k| !k.is_empty()),
            None,
            None,
            None,
        )
        .map_err(|err| StorageError::Config(format!("S3 credentials: {err}")))?;
        let mut public_bucket = Bucket::new(name, public_region, credentials.clone())?;
        let mut bucket =
            Bucket::new(name, region, credentials)?.with_request_timeout(REQUEST_TIMEOUT)?;
        if path_style {
            bucket.set_path_style();
            public_bucket.set_path_style();
        }
        let prefix = url.path().trim_matches('/');
        Ok(S3Store {
            bucket,
            public_bucket,
            prefix: if prefix.is_empty() {
                "summaries".to_owned()
            } else {
                prefix.to_owned()
            },
            upload_concurrency: settings.upload_concurrency,
        })
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Streams the file up as it is written: one PUT under 8 MiB, a multipart
    /// upload above (rust-s3 aborts the upload when a part or the source
    /// fails, so a truncated object is never completed).
    pub(crate) async fn put_stream(
        &self,
        key: &str,
        mut source: PipeReader,
        file_name: &str,
    ) -> Result<u64> {
        let response = self
            .bucket
            .put_object_stream_builder(key)
            .with_content_type(XLSX_CONTENT_TYPE)
            .with_header(
                http::header::CONTENT_DISPOSITION,
                content_disposition(file_name),
            )?
            .with_max_concurrent_chunks(self.upload_concurrency)
            .execute_stream(&mut source)
            .await?;
        if response.status_code() >= 300 {
            return Err(
                S3Error::HttpFailWithBody(response.status_code(), "upload refused".into()).into(),
            );
        }
        Ok(response.uploaded_bytes() as u64)
    }

    pub(crate) async fn presign(
        &self,
        key: &str,
        file_name: &str,
        ttl: Duration,
    ) -> Result<String> {
        let secs = ttl.as_secs().clamp(1, MAX_PRESIGN_SECS) as u32;
        let queries = HashMap::from([(
            "response-content-disposition".to_owned(),
            content_disposition(file_name),
        )]);
        Ok(self
            .public_bucket
            .presign_get(key, secs, Some(queries))
            .await?)
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        match self.bucket.delete_object(key).await {
            Ok(_) | Err(S3Error::HttpFailWithBody(404, _)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes every object whose key starts with `prefix` (`list` follows
    /// the continuation tokens through every page); answers how many.
    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let pages = self.bucket.list(prefix.to_owned(), None).await?;
        let mut deleted = 0;
        for object in pages.iter().flat_map(|page| &page.contents) {
            self.delete(&object.key).await?;
            deleted += 1;
        }
        Ok(deleted)
    }

    pub(crate) async fn exists(&self, key: &str) -> Result<bool> {
        match self.bucket.head_object(key).await {
            Ok(_) => Ok(true),
            Err(S3Error::HttpFailWithBody(404, _)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// The bucket answers a signed request (a HEAD of a key that need not exist).
    pub(crate) async fn check(&self) -> Result<()> {
        self.exists(&format!("{}/.readyz", self.prefix))
            .await
            .map(drop)
    }
}

/// A region at `endpoint`, an http(s) URL (`what` names the setting).
fn custom_region(region: &str, endpoint: &str, what: &str) -> Result<Region> {
    let parsed = url::Url::parse(endpoint)
        .map_err(|err| StorageError::Config(format!("S3 {what} {endpoint:?}: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(StorageError::Config(format!(
            "S3 {what} {endpoint:?} is not an http(s) URL"
        )));
    }
    Ok(Region::Custom {
        region: region.to_owned(),
        endpoint: endpoint.trim_end_matches('/').to_owned(),
    })
}

/// Unreachable, timed out, throttled or 5xx: worth another try.
pub(crate) fn is_retryable(err: &S3Error) -> bool {
    match err {
        S3Error::HttpFailWithBody(code, _) => *code >= 500 || *code == 429 || *code == 408,
        S3Error::HttpFail | S3Error::Io(_) | S3Error::Reqwest(_) => true,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn open(url: &str) -> Result<S3Store> {
        let mut settings = StorageSettings::new(url);
        settings.access_key_id = Some("AKIAEXAMPLE".into());
        settings.secret_access_key = Some("secret".into());
        S3Store::open(&url::Url::parse(url).unwrap(), &settings)
    }

    #[tokio::test]
    async fn download_links_are_signed_for_the_public_endpoint_when_one_is_set() {
        let store = open(
            "s3://sums/p?endpoint=http://s3:9000&region=us-east-1\
             &public_endpoint=https://downloads.example.com/",
        )
        .unwrap();
        let url = store
            .presign("p/1/a.xlsx", "a.xlsx", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(
            url.starts_with("https://downloads.example.com/sums/p/1/a.xlsx?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Signature="), "{url}");

        let internal = open("s3://sums/p?endpoint=http://s3:9000&region=us-east-1").unwrap();
        let url = internal
            .presign("p/1/a.xlsx", "a.xlsx", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(url.starts_with("http://s3:9000/sums/p/1/a.xlsx?"), "{url}");
    }

    #[test]
    fn an_endpoint_that_is_not_an_http_url_is_refused_at_start() {
        for url in [
            "s3://sums?endpoint=s3:9000",
            "s3://sums?endpoint=http://s3:9000&public_endpoint=ftp://x",
            "s3://sums?endpoint=http://s3:9000&public_endpoint=downloads.example.com",
        ] {
            let err = open(url).unwrap_err().to_string();
            assert!(err.contains("endpoint"), "{url}: {err}");
        }
    }
}
