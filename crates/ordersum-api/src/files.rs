//! `GET /files/{key}?Expires=…&Signature=…`: downloads from the local store,
//! only with a valid, unexpired signature (checked in constant time),
//! streamed with Content-Length and Content-Disposition.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordersum_storage::{Store, XLSX_CONTENT_TYPE, content_disposition};
use tokio_util::io::ReaderStream;

use crate::state::AppState;

pub async fn download(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Store::Local(store) = &state.store else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let expires = query.get("Expires").and_then(|e| e.parse::<i64>().ok());
    let signature = query.get("Signature");
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return refused("missing Expires or Signature");
    };
    let now = chrono::Utc::now().timestamp();
    let Some(file) = store.verify(&key, expires, signature, now) else {
        return refused("invalid or expired link");
    };
    let opened = match tokio::fs::File::open(&file.path).await {
        Ok(opened) => opened,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return (StatusCode::NOT_FOUND, "this summary no longer exists\n").into_response();
        }
        Err(err) => {
            tracing::error!(error = %err, path = %file.path.display(), "cannot open summary file");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let length = match opened.metadata().await {
        Ok(meta) => meta.len(),
        Err(err) => {
            tracing::error!(error = %err, "cannot stat summary file");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    (
        [
            (header::CONTENT_TYPE, XLSX_CONTENT_TYPE.to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
            (
                header::CONTENT_DISPOSITION,
                content_disposition(&file.file_name),
            ),
        ],
        Body::from_stream(ReaderStream::with_capacity(opened, DOWNLOAD_CHUNK)),
    )
        .into_response()
}

/// Bytes read from the file per body chunk (tokio's file reads each go to a
/// blocking thread: 4 KiB chunks made a 200 MiB download take seconds).
const DOWNLOAD_CHUNK: usize = 256 * 1024;

fn refused(why: &'static str) -> Response {
    (StatusCode::FORBIDDEN, format!("download refused: {why}\n")).into_response()
}
