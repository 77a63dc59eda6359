//! The operator console at `/admin`: a sign-in page, one page of plain HTML,
//! JavaScript (ES modules) and CSS embedded in the binary (no CDN, no build
//! step), and the JSON API it reads (`/admin/api/…`, see [`api`]). Off, and
//! every path under `/admin` a 404, unless `ORDERSUM_ADMIN_TOKEN` is set.

pub mod api;
pub mod auth;
mod error;
mod signed;
pub mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Extension, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::state::AppState;
use auth::{AdminAuth, COOKIE, Refusal, SESSION_TTL, Session};
use ordersum_model::store;

const LOGIN_HTML: &str = include_str!("../../assets/admin/login.html");
const CONSOLE_HTML: &str = include_str!("../../assets/admin/console.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `(name, content type, body)` of a file of `assets/admin/`.
macro_rules! embed {
    ($name:literal, $content_type:expr) => {
        (
            $name,
            $content_type,
            include_str!(concat!("../../assets/admin/", $name)),
        )
    };
}

/// The page's static files, served at `/admin/assets/<name>`: the
/// stylesheet and the script as ES modules, `console.js` the entry (the
/// router), which imports the rest by relative path (`./jobs.js`).
const ASSETS: &[(&str, &str, &str)] = &[
    embed!("console.css", CSS),
    embed!("console.js", JS),
    embed!("api.js", JS),
    embed!("live.js", JS),
    embed!("dom.js", JS),
    embed!("format.js", JS),
    embed!("widgets.js", JS),
    embed!("overview.js", JS),
    embed!("jobs.js", JS),
    embed!("job.js", JS),
    embed!("job-summary.js", JS),
    embed!("job-actions.js", JS),
    embed!("job-facts.js", JS),
    embed!("job-history.js", JS),
    embed!("workers.js", JS),
    embed!("companies.js", JS),
];

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
        .route("/admin/assets/{file}", get(static_file))
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

/// One of [`ASSETS`] by name; 404 for any other name.
async fn static_file(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some(&(_, content_type, body)) => asset(content_type, body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn served(name: &str) -> Option<(&'static str, &'static str)> {
        ASSETS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|&(_, content_type, body)| (content_type, body))
    }

    /// The module specifiers of a module's static `import`/`export … from`
    /// statements (each at the start of a line, as the modules are written;
    /// a multi-line import ends in a line `} from "…";`).
    fn imports(js: &str) -> Vec<&str> {
        let mut found = Vec::new();
        for line in js.lines() {
            let statement = ["import ", "export ", "} from "]
                .iter()
                .any(|start| line.starts_with(start));
            if !statement {
                continue;
            }
            let rest = match line.rfind(" from ") {
                Some(at) => &line[at + " from ".len()..],
                None => match line.strip_prefix("import ") {
                    Some(rest) => rest,
                    None => continue,
                },
            };
            let rest = rest.trim_start();
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let rest = &rest[1..];
            if let Some(end) = rest.find(quote) {
                found.push(&rest[..end]);
            }
        }
        found
    }

    #[test]
    fn import_statements_are_found() {
        let js = "import { a, b } from \"./a.js\";\nimport {\n  c,\n} from './c.js';\n\
                  import \"./side.js\";\nexport { d } from \"./d.js\";\n\
                  const s = \"text from \";\n  // import x from \"./no.js\";\n";
        assert_eq!(imports(js), ["./a.js", "./c.js", "./side.js", "./d.js"]);
    }

    #[test]
    fn every_import_names_a_served_module() {
        let mut imported = vec!["console.js"];
        for &(name, content_type, body) in ASSETS {
            if content_type != JS {
                continue;
            }
            for spec in imports(body) {
                let file = spec.strip_prefix("./").unwrap_or_else(|| {
                    panic!("{name} imports {spec:?}: imports must be relative, like \"./jobs.js\"")
                });
                assert!(
                    served(file).is_some_and(|(content_type, _)| content_type == JS),
                    "{name} imports {spec:?}, which /admin/assets/ does not serve"
                );
                imported.push(file);
            }
        }
        assert!(imported.len() > ASSETS.len() / 2, "no imports found");
        for &(name, content_type, _) in ASSETS {
            assert!(
                content_type != JS || imported.contains(&name),
                "{name} is served but no module imports it"
            );
        }
    }

    #[test]
    fn the_pages_name_served_files() {
        assert!(CONSOLE_HTML.contains(r#"<script type="module" src="/admin/assets/console.js">"#));
        for page in [CONSOLE_HTML, LOGIN_HTML] {
            for (at, _) in page.match_indices("\"/admin/assets/") {
                let rest = &page[at + "\"/admin/assets/".len()..];
                let name = &rest[..rest.find('"').expect("a closing quote")];
                assert!(
                    served(name).is_some(),
                    "a page loads {name}, which is not served"
                );
            }
        }
    }

    #[test]
    fn every_asset_file_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/admin");
        for entry in std::fs::read_dir(&dir).expect("assets/admin") {
            let name = entry.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".js") || name.ends_with(".css") {
                assert!(
                    served(&name).is_some(),
                    "assets/admin/{name} is not in ASSETS"
                );
            }
        }
    }

    #[tokio::test]
    async fn assets_by_name_and_404_for_others() {
        let response = static_file(Path("job.js".to_owned())).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let response = static_file(Path("console.css".to_owned())).await;
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        for unknown in [
            "nope.js",
            "console.html",
            "../src/admin/mod.rs",
            "",
            "JOB.JS",
        ] {
            let response = static_file(Path(unknown.to_owned())).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{unknown:?}");
        }
    }
}
