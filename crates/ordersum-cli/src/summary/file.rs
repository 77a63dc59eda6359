//! Where `ordersum summary` puts the file: a name from the server's that
//! cannot leave the current directory, never overwriting one already there,
//! and the download streamed into it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::io::AsyncWriteExt;

/// What the CLI names a file when the server's `FileName` is unusable.
pub(super) const FALLBACK_FILE_NAME: &str = "order-summary.xlsx";

/// A file name from the server, made safe to create in the current
/// directory: its last path component (`/` or `\\` separated), without
/// control characters or leading dots (no `..`, no hidden files), at most 255
/// bytes; `order-summary.xlsx` when nothing usable is left.
pub fn safe_file_name(server_name: &str) -> String {
    let base = server_name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() || cleaned.len() > 255 {
        FALLBACK_FILE_NAME.to_owned()
    } else {
        cleaned.to_owned()
    }
}

pub(super) async fn create_file(path: &Path) -> anyhow::Result<tokio::fs::File> {
    tokio::fs::File::create(path)
        .await
        .with_context(|| format!("creating {}", path.display()))
}

/// Creates `name`, or `stem (1).ext`, `stem (2).ext`, … if taken: an
/// existing file is never overwritten.
pub(super) async fn create_new_file(name: &str) -> anyhow::Result<(PathBuf, tokio::fs::File)> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    for n in 0..1000 {
        let path = PathBuf::from(match n {
            0 => name.to_owned(),
            n => format!("{stem} ({n}){ext}"),
        });
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err).with_context(|| format!("creating {}", path.display())),
        }
    }
    bail!("{name} and 999 numbered variants exist already: pass --output")
}

/// The answer to a GET of `url`, if it is a success.
pub(super) async fn start_download(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<reqwest::Response> {
    let response = http
        .get(url)
        .send()
        .await
        .context("downloading the summary")?;
    if !response.status().is_success() {
        bail!("download answered HTTP {}", response.status());
    }
    Ok(response)
}

/// Streams the body of `response` into `file`; answers the bytes written.
pub(super) async fn save_download(
    mut response: reqwest::Response,
    file: tokio::fs::File,
) -> anyhow::Result<u64> {
    // Buffered: tokio's file writes each go to a blocking thread.
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.context("downloading the summary")? {
        file.write_all(&chunk).await?;
        size += chunk.len() as u64;
    }
    file.flush().await?;
    Ok(size)
}
