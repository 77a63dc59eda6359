//! The configuration reference checked in (`.env.example`, the table of
//! `docs/configuration.md`, README's short table, the keys of the
//! Kubernetes `config.env`) is what the settings' declarations say today.
//! A setting added, renamed or given another default without regenerating
//! them fails here. `UPDATE_CONFIG_DOCS=1 cargo test -p ordersum-cli --test
//! config_docs` rewrites the files.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_CONFIG_DOCS").is_some_and(|v| v == "1")
}

/// Compares (or, updating, replaces) the text between `<!-- {marker}:begin -->`
/// and `<!-- {marker}:end -->` in `path`.
fn check_block(path: &str, marker: &str, expected: &str) {
    let text = read(path);
    let begin = format!("<!-- {marker}:begin -->\n");
    let end = format!("<!-- {marker}:end -->");
    let start = text
        .find(&begin)
        .unwrap_or_else(|| panic!("{path} has no {begin:?}"))
        + begin.len();
    let stop = start
        + text[start..]
            .find(&end)
            .unwrap_or_else(|| panic!("{path} has no {end:?}"));
    if &text[start..stop] == expected {
        return;
    }
    if updating() {
        let updated = format!("{}{expected}{}", &text[..start], &text[stop..]);
        std::fs::write(repo().join(path), updated).expect("write");
        return;
    }
    panic!(
        "{path}'s {marker} table is not what the settings declare:\n{}\n\
         regenerate it: UPDATE_CONFIG_DOCS=1 cargo test -p ordersum-cli --test config_docs",
        first_difference(&text[start..stop], expected)
    );
}

fn first_difference(found: &str, expected: &str) -> String {
    let mut expected_lines = expected.lines();
    for (n, line) in found.lines().enumerate() {
        match expected_lines.next() {
            Some(want) if want == line => continue,
            want => {
                return format!(
                    "line {}: checked in {line:?}\n         declared {want:?}",
                    n + 1
                );
            }
        }
    }
    match expected_lines.next() {
        Some(want) => format!("declared but not checked in: {want:?}"),
        None => "(only line endings differ)".into(),
    }
}

#[test]
fn env_example_is_what_the_settings_declare() {
    let expected = ordersum_cli::config::env_file();
    let found = read(".env.example");
    if found == expected {
        return;
    }
    if updating() {
        std::fs::write(repo().join(".env.example"), &expected).expect("write");
        return;
    }
    panic!(
        ".env.example is not what the settings declare:\n{}\n\
         regenerate it: UPDATE_CONFIG_DOCS=1 cargo test -p ordersum-cli --test config_docs",
        first_difference(&found, &expected)
    );
}

#[test]
fn the_configuration_tables_are_what_the_settings_declare() {
    check_block(
        "docs/configuration.md",
        "settings",
        &ordersum_cli::config::markdown(),
    );
    check_block("README.md", "settings", &ordersum_cli::config::summary());
}

#[test]
fn the_kubernetes_config_sets_only_settings_that_exist() {
    let known: Vec<String> = ordersum_cli::config::settings()
        .into_iter()
        .map(|doc| doc.variable)
        .collect();
    for line in read("deploy/k8s/base/config.env").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, _) = line.split_once('=').expect("NAME=value");
        assert!(
            name == "RUST_LOG" || known.iter().any(|k| k == name),
            "deploy/k8s/base/config.env sets {name}, which no ordersum program reads"
        );
    }
}
