//! Files in a local directory, downloaded through the API with URLs signed by
//! HMAC-SHA256 over the key and the expiry time.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{ExposeSecret, PipeReader, Result, StorageError, StorageSettings};

type HmacSha256 = Hmac<Sha256>;

/// Shortest `ORDERSUM_URL_SECRET` accepted: the HMAC-SHA256 key should be as
/// strong as the hash.
const MIN_SECRET_LEN: usize = 32;
/// Mode of stored files: the summaries are customers' billing data, readable
/// by the service's user only.
const FILE_MODE: u32 = 0o600;

/// A directory of summaries and the key that signs their URLs.
#[derive(Clone)]
pub struct LocalStore {
    root: PathBuf,
    public_url: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("root", &self.root)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// A verified request for a local file.
#[derive(Debug)]
pub struct SignedFile {
    pub path: PathBuf,
    pub file_name: String,
}

impl LocalStore {
    pub(crate) fn open(
        url: &url::Url,
        settings: &StorageSettings,
        default_public_url: &str,
    ) -> Result<Self> {
        let root = url
            .to_file_path()
            .map_err(|()| StorageError::Config(format!("{url} is not a local directory")))?;
        let secret = match settings
            .url_secret
            .as_ref()
            .map(ExposeSecret::expose_secret)
        {
            Some(secret) if secret.len() < MIN_SECRET_LEN && !secret.is_empty() => {
                return Err(StorageError::Config(format!(
                    "ORDERSUM_URL_SECRET is {} bytes long; it must be at least {MIN_SECRET_LEN} \
                     (e.g. `openssl rand -hex 32`)",
                    secret.len()
                )));
            }
            Some(secret) if !secret.is_empty() => secret.as_bytes().to_vec(),
            _ => {
                tracing::warn!(
                    "ORDERSUM_URL_SECRET is not set: download links are signed with a random key \
                     and stop working when this process restarts or on other replicas"
                );
                rand::random::<[u8; 32]>().to_vec()
            }
        };
        // `ORDERSUM_PUBLIC_URL=` (empty, as `.env.example` lists it) is unset.
        let public_url = settings
            .public_url
            .as_deref()
            .filter(|url| !url.is_empty())
            .unwrap_or(default_public_url);
        Ok(LocalStore {
            root,
            public_url: public_url.trim_end_matches('/').to_owned(),
            secret,
        })
    }

    /// A store at `root` signing with `secret`, links based at `public_url`.
    pub fn new(root: impl Into<PathBuf>, public_url: &str, secret: &[u8]) -> Self {
        LocalStore {
            root: root.into(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            secret: secret.to_vec(),
        }
    }

    fn signature(&self, key: &str, expires: i64) -> String {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub(crate) fn presign(&self, key: &str, ttl: Duration) -> String {
        let expires = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
        let signature = self.signature(key, expires);
        // Keys are built from ids and generated file names: URL-safe as they are.
        format!(
            "{}/files/{key}?Expires={expires}&Signature={signature}",
            self.public_url
        )
    }

    /// Checks a download request: the signature must match in constant time
    /// and the link must not have expired. `None` refuses it.
    pub fn verify(&self, key: &str, expires: i64, signature: &str, now: i64) -> Option<SignedFile> {
        let expected = self.signature(key, expires);
        let given = signature.to_ascii_lowercase();
        let valid: bool = expected.as_bytes().ct_eq(given.as_bytes()).into();
        if !valid || now > expires {
            return None;
        }
        let path = self.path_of(key)?;
        let file_name = key.rsplit('/').next().unwrap_or(key).to_owned();
        Some(SignedFile { path, file_name })
    }

    /// The file of `key`, refusing anything that would leave the root.
    fn path_of(&self, key: &str) -> Option<PathBuf> {
        let relative = Path::new(key);
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        (plain && !key.is_empty()).then(|| self.root.join(relative))
    }

    pub(crate) async fn put_stream(&self, key: &str, mut source: PipeReader) -> Result<u64> {
        let target = self.path_of(key).ok_or_else(|| {
            StorageError::Config(format!("object key {key:?} is not a plain path"))
        })?;
        let dir = target.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(dir).await?;
        // Written beside the target, then renamed over it: readers never see
        // half a file, and tempfile removes the partial one on every other
        // path (an error, or this future dropped).
        let partial = tempfile::Builder::new()
            .suffix(".partial")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(FILE_MODE))
            .tempfile_in(dir)?;
        let mut file = tokio::fs::File::from_std(partial.as_file().try_clone()?);
        let size = tokio::io::copy_buf(&mut source, &mut file).await?;
        file.sync_all().await?;
        drop(file);
        partial.persist(&target).map_err(|err| err.error)?;
        Ok(size)
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        let Some(path) = self.path_of(key) else {
            return Ok(());
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        // Drop the attempt's directory, then the job's, when empty now
        // (`remove_dir` refuses a directory that is not).
        let attempt_dir = path.parent();
        for dir in [attempt_dir, attempt_dir.and_then(Path::parent)]
            .into_iter()
            .flatten()
        {
            if dir == self.root.as_path() || tokio::fs::remove_dir(dir).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Removes the directory `prefix` (a key prefix ending in `/`) and
    /// everything in it, partial files included; answers how many files
    /// were in it. A prefix that would leave the root is refused.
    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let dir = self
            .path_of(prefix.trim_end_matches('/'))
            .filter(|dir| dir != &self.root)
            .ok_or_else(|| {
                StorageError::Config(format!("object key prefix {prefix:?} is not a plain path"))
            })?;
        let files = count_files(dir.clone()).await?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(files),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(files),
            Err(err) => Err(err.into()),
        }
    }

    pub(crate) async fn exists(&self, key: &str) -> Result<bool> {
        match self.path_of(key) {
            Some(path) => Ok(tokio::fs::try_exists(path).await?),
            None => Ok(false),
        }
    }

    pub(crate) async fn check(&self) -> Result<()> {
        tokio::fs::create_dir_all(&self.root).await?;
        Ok(())
    }
}

/// Files under `dir`, at any depth (not following symbolic links); a
/// directory that is not there (or went meanwhile) holds none.
async fn count_files(dir: PathBuf) -> std::io::Result<usize> {
    let mut pending = vec![dir];
    let mut files = 0;
    while let Some(dir) = pending.pop() {
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_type().await?.is_dir() {
                pending.push(entry.path());
            } else {
                files += 1;
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> LocalStore {
        LocalStore::new("/srv/ordersum", "http://api.example/", b"secret")
    }

    #[test]
    fn a_presigned_url_verifies_until_it_expires() {
        let store = store();
        let expires = 2_000_000_000;
        let sig = store.signature("summaries/1/j/a.xlsx", expires);
        let file = store
            .verify("summaries/1/j/a.xlsx", expires, &sig, expires - 1)
            .expect("valid");
        assert_eq!(
            file.path,
            PathBuf::from("/srv/ordersum/summaries/1/j/a.xlsx")
        );
        assert_eq!(file.file_name, "a.xlsx");
        assert!(
            store
                .verify("summaries/1/j/a.xlsx", expires, &sig, expires + 1)
                .is_none()
        );
    }

    #[test]
    fn a_tampered_key_expiry_or_signature_is_refused() {
        let store = store();
        let sig = store.signature("summaries/1/j/a.xlsx", 100);
        assert!(store.verify("summaries/2/j/a.xlsx", 100, &sig, 0).is_none());
        assert!(store.verify("summaries/1/j/a.xlsx", 101, &sig, 0).is_none());
        assert!(
            store
                .verify("summaries/1/j/a.xlsx", 100, &"0".repeat(64), 0)
                .is_none()
        );
        let other = LocalStore::new("/srv/ordersum", "http://x", b"other");
        assert!(other.verify("summaries/1/j/a.xlsx", 100, &sig, 0).is_none());
    }

    #[test]
    fn keys_cannot_leave_the_root() {
        let store = store();
        let sig = store.signature("../etc/passwd", 100);
        assert!(store.verify("../etc/passwd", 100, &sig, 0).is_none());
        assert!(store.path_of("/etc/passwd").is_none());
    }

    fn open_with_secret(secret: Option<&str>) -> Result<LocalStore> {
        let mut settings = StorageSettings::new("file:///srv/ordersum");
        settings.url_secret = secret.map(crate::SecretString::from);
        let url = url::Url::parse(&settings.url).expect("url");
        LocalStore::open(&url, &settings, "http://127.0.0.1:8080")
    }

    #[test]
    fn a_url_secret_shorter_than_32_bytes_is_refused_at_start() {
        let err = open_with_secret(Some("test-url-secret")).expect_err("short secret accepted");
        let message = err.to_string();
        assert!(
            message.contains("ORDERSUM_URL_SECRET") && message.contains("at least 32"),
            "{message}"
        );
        assert!(open_with_secret(Some(&"k".repeat(31))).is_err());
        let store = open_with_secret(Some(&"k".repeat(32))).expect("32 bytes");
        assert_eq!(store.secret, b"k".repeat(32));
    }

    #[test]
    fn without_a_url_secret_a_random_key_signs() {
        for unset in [None, Some("")] {
            let store = open_with_secret(unset).expect("unset secret");
            assert_eq!(store.secret.len(), 32);
        }
    }

    #[tokio::test]
    async fn deleting_a_prefix_removes_its_directory_and_nothing_else() {
        let root = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::new(root.path(), "http://x", b"k");
        for path in [
            "s/1/job/1/a.xlsx",
            "s/1/job/2/b.xlsx.partial",
            "s/1/other/1/c.xlsx",
        ] {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, b"PK").expect("write");
        }
        assert_eq!(store.delete_prefix("s/1/job/").await.expect("delete"), 2);
        assert!(!root.path().join("s/1/job").exists());
        assert!(root.path().join("s/1/other/1/c.xlsx").exists());
        assert_eq!(store.delete_prefix("s/1/job/").await.expect("again"), 0);
        for outside in ["../s/1/job/", "/", "", "s/../../x/"] {
            assert!(store.delete_prefix(outside).await.is_err(), "{outside}");
        }
        assert!(root.path().join("s/1/other/1/c.xlsx").exists());
    }

    #[test]
    fn presigned_urls_point_at_the_files_route() {
        let url = store().presign("summaries/1/j/a.xlsx", Duration::from_secs(60));
        assert!(
            url.starts_with("http://api.example/files/summaries/1/j/a.xlsx?Expires="),
            "{url}"
        );
    }
}
