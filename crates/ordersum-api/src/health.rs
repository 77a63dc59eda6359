//! Kubernetes probes: `/healthz` (the process answers) and `/readyz`
//! (Postgres, Redis and the object store answer in time).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::state::AppState;

/// `/readyz`'s answer: ready, and each dependency `ok` or `unavailable`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Readiness {
    ready: bool,
    postgres: &'static str,
    redis: &'static str,
    storage: &'static str,
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let timeout = state.settings.dependency_timeout();
    let postgres =
        tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&state.pool)).await;
    let postgres_ok = matches!(postgres, Ok(Ok(_)));
    let redis_ok = state.queue.ping().await.is_ok();
    let storage_ok = matches!(
        tokio::time::timeout(timeout, state.store.check()).await,
        Ok(Ok(()))
    );
    let status = if postgres_ok && redis_ok && storage_ok {
        StatusCode::OK
    } else {
        tracing::warn!(postgres_ok, redis_ok, storage_ok, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = Readiness {
        ready: status == StatusCode::OK,
        postgres: word(postgres_ok),
        redis: word(redis_ok),
        storage: word(storage_ok),
    };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
