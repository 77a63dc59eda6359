//! The operator console at `/admin`: a sign-in page, one page of plain HTML,
//! JavaScript (ES modules) and CSS embedded in the binary (no CDN, no build
//! step), and the JSON API it reads (`/admin/api/…`, see [`api`]). Off, and
//! every path under `/admin` a 404, unless `ORDERSUM_ADMIN_TOKEN` is set.

pub mod api;
mod assets;
pub mod auth;
mod error;
mod signed;
pub mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Extension, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::state::AppState;
use auth::{AdminAuth, COOKIE, Refusal, SESSION_TTL, Session};
use ordersum_model::store;

const LOGIN_HTML: &str = include_str!("../../assets/admin/login.html");
const CONSOLE_HTML: &str = include_str!("../../assets/admin/console.html");

/// Scripts and styles from this origin only; no inline code, no frames.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     form-action 'self'; base-uri 'none'";

/// The console's routes, each handed the credentials; none when it is off.
pub fn router(settings: &crate::Settings) -> Router<AppState> {
    let Some(token) = settings.admin_token.clone() else {
        return Router::new();
    };
    Router::new()
        .route("/admin", get(page))
        .route("/admin/", get(page))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/assets/{file}", get(assets::static_file))
        .merge(api::router())
        .layer(Extension(Arc::new(AdminAuth::new(token))))
}

/// The session a request's cookie holds, if it is signed in: signed by
/// this token, unexpired and not signed out.
pub async fn signed_in(
    state: &AppState,
    admin: &AdminAuth,
    headers: &HeaderMap,
) -> Result<Option<Session>, sqlx::Error> {
    let Some(session) =
        auth::session_cookie(headers).and_then(|value| admin.session(value, now_secs()))
    else {
        return Ok(None);
    };
    let alive = store::sessions::session_alive(&state.pool, &session.id).await?;
    Ok(alive.then_some(session))
}

/// The sign-in page, or the console for a signed-in operator.
async fn page(
    State(state): State<AppState>,
    Extension(admin): Extension<Arc<AdminAuth>>,
    headers: HeaderMap,
) -> Response {
    match signed_in(&state, &admin, &headers).await {
        Ok(Some(session)) => html(
            StatusCode::OK,
            CONSOLE_HTML.replace("{{csrf}}", &escape(&session.csrf)),
        ),
        Ok(None) => login_page(StatusCode::OK, ""),
        Err(err) => unavailable(err),
    }
}

/// Postgres is out of reach: logged in full, the page says only that.
fn unavailable(err: sqlx::Error) -> Response {
    tracing::error!(error = %err, "operator console: the database is unavailable");
    login_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The console cannot reach its database; try again shortly.",
    )
}

#[derive(Deserialize)]
struct SignIn {
    #[serde(default)]
    token: String,
}

/// The sign-in form: the token in, a session cookie out.
async fn login(
    State(state): State<AppState>,
    Extension(admin): Extension<Arc<AdminAuth>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    if !auth::same_origin(&headers) {
        tracing::warn!(%peer, "sign-in from another origin refused");
        return login_page(
            StatusCode::FORBIDDEN,
            "Sign in from this console's own page.",
        );
    }
    match admin.check_token(peer.ip(), &form.token, "form") {
        Ok(()) => {
            let (cookie, session) = admin.new_session(now_secs());
            let expires = chrono::DateTime::from_timestamp(session.expires, 0).unwrap_or_default();
            if let Err(err) =
                store::sessions::insert_session(&state.pool, &session.id, expires).await
            {
                return unavailable(err);
            }
            tracing::info!(%peer, "operator signed in");
            let mut response = Redirect::to("/admin").into_response();
            set_cookie(&mut response, &headers, &cookie, SESSION_TTL.as_secs());
            response
        }
        Err(Refusal::Limited(secs)) => login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many wrong tokens from your address. Wait {secs} seconds and try again."),
        ),
        Err(Refusal::Wrong) => login_page(StatusCode::UNAUTHORIZED, "Wrong token."),
    }
}

#[derive(Deserialize)]
struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// Signs out: the session ends on every replica and the cookie is cleared.
async fn logout(
    State(state): State<AppState>,
    Extension(admin): Extension<Arc<AdminAuth>>,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Response {
    let session = auth::session_cookie(&headers).and_then(|value| admin.session(value, now_secs()));
    let session = session.filter(|session| {
        auth::same_origin(&headers) && auth::csrf_matches(&session.csrf, Some(&form.csrf))
    });
    let Some(session) = session else {
        return (
            StatusCode::FORBIDDEN,
            "Sign out from the console's own page.",
        )
            .into_response();
    };
    if let Err(err) = store::sessions::delete_session(&state.pool, &session.id).await {
        return unavailable(err);
    }
    let mut response = Redirect::to("/admin").into_response();
    set_cookie(&mut response, &headers, "", 0);
    response
}

fn login_page(status: StatusCode, message: &str) -> Response {
    html(status, LOGIN_HTML.replace("{{message}}", &escape(message)))
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        body,
    )
        .into_response()
}

/// `Set-Cookie` for the session: HttpOnly, SameSite=Strict, path `/admin`;
/// `Secure` when the request came over HTTPS through a proxy that says so.
fn set_cookie(response: &mut Response, request: &HeaderMap, value: &str, max_age: u64) {
    let secure = request
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

/// Text for HTML: the five characters that matter escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}
