//! The extractor every console API handler takes: the operator's call,
//! signed in by cookie (a session not signed out) or Bearer token, and for
//! a call that changes something, from this origin with the session's CSRF
//! token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;

use super::auth::{self, AdminAuth, Refusal};
use super::error::{AdminError, Result};
use crate::state::AppState;

/// An operator's call: signed in by cookie (a session not signed out) or
/// Bearer; a call that changes something must also come from this origin
/// and, by cookie, carry the session's CSRF token. A handler taking it runs
/// for the operator only.
pub struct Signed {
    pub peer: SocketAddr,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |info| info.0);
        let admin = parts
            .extensions
            .get::<Arc<AdminAuth>>()
            .cloned()
            .ok_or(AdminError::NotFound)?;
        // A script's Bearer token, or a browser's session (with its CSRF token).
        let session = match auth::bearer(&parts.headers) {
            Some(token) => {
                admin
                    .check_token(peer.ip(), token, "bearer")
                    .map_err(|refusal| match refusal {
                        Refusal::Wrong => AdminError::WrongToken,
                        Refusal::Limited(secs) => AdminError::Limited(secs),
                    })?;
                None
            }
            None => Some(
                super::signed_in(state, &admin, &parts.headers)
                    .await?
                    .ok_or(AdminError::NotSignedIn)?,
            ),
        };
        if parts.method == Method::GET || parts.method == Method::HEAD {
            return Ok(Signed { peer });
        }
        if !auth::same_origin(&parts.headers) {
            tracing::warn!(%peer, "console call from another origin refused");
            return Err(AdminError::Forbidden(
                "Calls from another origin are refused.",
            ));
        }
        if let Some(session) = &session {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            if !auth::csrf_matches(&session.csrf, sent) {
                tracing::warn!(%peer, "console call without its CSRF token refused");
                return Err(AdminError::Forbidden(
                    "Missing or wrong X-CSRF-Token: reload the console.",
                ));
            }
        }
        Ok(Signed { peer })
    }
}
