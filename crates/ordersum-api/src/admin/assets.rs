//! The console page's static files, embedded in the binary: the stylesheet
//! and the script as plain ES modules (no build step), each served at
//! `/admin/assets/<name>`; any other name is a 404.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

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
    embed!("webhooks.js", JS),
    embed!("job-webhooks.js", JS),
];

/// One of [`ASSETS`] by name; 404 for any other name.
pub(super) async fn static_file(Path(file): Path<String>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{CONSOLE_HTML, LOGIN_HTML};

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
