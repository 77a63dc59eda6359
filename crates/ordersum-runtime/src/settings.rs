//! A setting is declared once, as a clap argument: its environment variable
//! (`env = …`), its default (`default_value_t = …`), the values it may take
//! (`value_parser = in_range(…)`) and its help (the doc comment). Everything
//! else is read off that declaration:
//!
//! - the parse and its refusals: [`in_range`] names the variable and the
//!   range, as [`InvalidSetting`] does for the cross-field checks that stay
//!   code in each binary's `validate`;
//! - the defaults a test or an embedding starts from ([`defaults_of`]), so
//!   no second list of defaults exists;
//! - the configuration reference: [`markdown_table`] and [`env_file`] render
//!   `docs/configuration.md`'s table and `.env.example` (the `ordersum
//!   config` command; a test fails when the checked-in files drift).

use std::ffi::OsStr;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

/// A setting given a value it may not take: refused at start, never
/// clamped.
#[derive(Debug, thiserror::Error)]
#[error("{setting}={value} is not allowed: {rule}")]
pub struct InvalidSetting {
    pub setting: String,
    pub value: String,
    pub rule: String,
}

/// Checks that setting `setting` (its environment variable's name) is within
/// `range`: for the checks that depend on another setting.
pub fn check_range<T>(
    setting: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), InvalidSetting>
where
    T: PartialOrd + fmt::Display,
{
    if range.contains(&value) {
        return Ok(());
    }
    Err(InvalidSetting {
        setting: setting.to_owned(),
        value: value.to_string(),
        rule: format!("between {} and {}", range.start(), range.end()),
    })
}

/// The value parser of a number that must lie within `range`: clap refuses
/// anything else at start with the variable's name and the range.
pub fn in_range<T>(range: RangeInclusive<T>) -> InRange<T> {
    InRange(range)
}

/// See [`in_range`].
#[derive(Clone, Debug)]
pub struct InRange<T>(RangeInclusive<T>);

impl<T> TypedValueParser for InRange<T>
where
    T: FromStr + PartialOrd + fmt::Display + Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        match text.trim().parse::<T>() {
            Ok(number) if self.0.contains(&number) => Ok(number),
            _ => {
                let refusal = InvalidSetting {
                    setting: arg.map(variable_name).unwrap_or_default(),
                    value: text.into_owned(),
                    rule: format!("between {} and {}", self.0.start(), self.0.end()),
                };
                let mut err = clap::Error::raw(ErrorKind::ValueValidation, format!("{refusal}\n"));
                err = err.with_cmd(cmd);
                Err(err)
            }
        }
    }
}

/// The name a user sets an argument by: its environment variable, else its
/// flag.
fn variable_name(arg: &clap::Arg) -> String {
    match (arg.get_env(), arg.get_long()) {
        (Some(env), _) => env.to_string_lossy().into_owned(),
        (None, Some(long)) => format!("--{long}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// `T` as its declaration's defaults give it, with `args` (flags such as
/// `--database-url`, after the program name) on top. The environment is not
/// read: the result is the same on every machine.
pub fn defaults_of<T: clap::Parser>(args: &[&str]) -> T {
    let command = T::command().mut_args(|arg| arg.env(None::<&'static str>));
    let matches = command
        .try_get_matches_from(args)
        .unwrap_or_else(|err| panic!("the declared defaults parse: {err}"));
    T::from_arg_matches(&matches).unwrap_or_else(|err| panic!("the declared defaults fit: {err}"))
}

/// One documented setting, read off a clap argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingDoc {
    pub variable: String,
    /// The programs that read it, in the order given to [`documented`].
    pub used_by: Vec<&'static str>,
    /// Its default as the variable would be written; empty: none.
    pub default: String,
    /// The values it may take, when the declaration says (`1 – 64`,
    /// `text, json`, …).
    pub allowed: String,
    /// The first sentence of its help.
    pub summary: String,
    /// The whole help, one line.
    pub help: String,
}

/// Every setting the programs read from the environment (hidden, test-only
/// ones left out), each once, in declaration order: those of the first
/// program first.
pub fn documented(programs: &[(&'static str, clap::Command)]) -> Vec<SettingDoc> {
    let mut docs: Vec<SettingDoc> = Vec::new();
    for (program, command) in programs {
        let mut command = command.clone();
        command.build();
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            if arg.is_hide_set() {
                continue;
            }
            let variable = env.to_string_lossy().into_owned();
            if let Some(known) = docs.iter_mut().find(|doc| doc.variable == variable) {
                known.used_by.push(program);
                continue;
            }
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|help| one_line(&help.to_string()))
                .unwrap_or_default();
            // clap drops the full stop of a one-paragraph doc comment.
            let help = match help.ends_with('.') || help.is_empty() {
                true => help,
                false => format!("{help}."),
            };
            let summary = first_sentence(&help);
            let default = arg
                .get_default_values()
                .iter()
                .map(|value| value.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",");
            docs.push(SettingDoc {
                variable,
                used_by: vec![program],
                default,
                allowed: allowed_values(&command, arg),
                summary,
                help,
            });
        }
    }
    docs
}

/// The values an argument may take, as its value parser states them: the
/// range [`in_range`] refuses with, or the possible values of an enum or a
/// boolean.
fn allowed_values(command: &clap::Command, arg: &clap::Arg) -> String {
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| value.get_name().to_owned())
        .collect();
    if !possible.is_empty() {
        return possible.join(", ");
    }
    // An empty value is refused by every range, with the range in the words.
    let Some(long) = arg.get_long() else {
        return String::new();
    };
    let probe = command
        .clone()
        .mut_args(|arg| arg.env(None::<&'static str>));
    let flag = format!("--{long}");
    match probe.try_get_matches_from([command.get_name(), flag.as_str(), ""]) {
        Err(err) => {
            let text = err.to_string();
            match text.split_once(" is not allowed: between ") {
                Some((_, range)) => {
                    let range = range.lines().next().unwrap_or_default().trim();
                    range.replacen(" and ", "–", 1)
                }
                None => String::new(),
            }
        }
        Ok(_) => String::new(),
    }
}

fn first_sentence(text: &str) -> String {
    // A full stop ends a sentence when a capital follows ("e.g. `x`" does not).
    let end = text
        .match_indices(". ")
        .find(|(at, _)| text[at + 2..].starts_with(|c: char| c.is_ascii_uppercase()))
        .map_or(text.len(), |(at, _)| at);
    let sentence = &text[..end];
    sentence.trim_end_matches('.').to_owned()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn code_or_dash(text: &str) -> String {
    if text.is_empty() {
        "—".to_owned()
    } else {
        format!("`{}`", cell(text))
    }
}

/// The reference table: every setting with who reads it, its default, the
/// values it may take and its help.
pub fn markdown_table(docs: &[SettingDoc]) -> String {
    let mut out = String::from("| variable | read by | default | allowed | meaning |\n");
    out.push_str("|---|---|---|---|---|\n");
    for doc in docs {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            doc.variable,
            doc.used_by.join(", "),
            code_or_dash(&doc.default),
            cell(&doc.allowed),
            cell(&doc.help),
        ));
    }
    out
}

/// A short table of the settings named in `variables`, in that order, with
/// their default and the first sentence of their help.
pub fn summary_table(docs: &[SettingDoc], variables: &[&str]) -> String {
    let mut out = String::from("| variable | default | what |\n|---|---|---|\n");
    for variable in variables {
        let Some(doc) = docs.iter().find(|doc| doc.variable == *variable) else {
            panic!("{variable} is not a documented setting");
        };
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            doc.variable,
            code_or_dash(&doc.default),
            cell(&doc.summary)
        ));
    }
    out
}

/// `.env.example`: every setting under a heading of the programs that read
/// it, its help as a comment, set to its default (commented out when it has
/// none: an empty value is not the same as unset).
pub fn env_file(header: &str, docs: &[SettingDoc]) -> String {
    let mut out = String::from(header);
    let mut groups: Vec<Vec<&'static str>> = Vec::new();
    for doc in docs {
        if !groups.contains(&doc.used_by) {
            groups.push(doc.used_by.clone());
        }
    }
    for group in groups {
        out.push_str(&format!("\n# --- {} ---\n", group.join(" and ")));
        for doc in docs.iter().filter(|doc| doc.used_by == group) {
            let mut help = doc.help.clone();
            if !doc.allowed.is_empty() {
                help.push_str(&format!(" [{}]", doc.allowed));
            }
            for line in wrap(&help, 76) {
                out.push_str(&format!("# {line}\n"));
            }
            if doc.default.is_empty() {
                out.push_str(&format!("#{}=\n", doc.variable));
            } else {
                out.push_str(&format!("{}={}\n", doc.variable, doc.default));
            }
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Test program.
    #[derive(Debug, clap::Parser)]
    struct Demo {
        /// Jobs at once. More words.
        #[arg(long, env = "DEMO_JOBS", default_value_t = 2, value_parser = in_range(1..=64usize))]
        jobs: usize,
        /// Where to go.
        #[arg(long, env = "DEMO_DIR")]
        dir: Option<String>,
        /// Hidden.
        #[arg(long, env = "DEMO_HIDDEN", hide = true)]
        hidden: Option<String>,
    }

    #[test]
    fn a_value_out_of_range_is_refused_naming_the_variable_and_the_range() {
        let err = Demo::try_parse_from(["demo", "--jobs", "65"]).expect_err("refused");
        assert!(
            err.to_string()
                .contains("DEMO_JOBS=65 is not allowed: between 1 and 64"),
            "{err}"
        );
        let err = Demo::try_parse_from(["demo", "--jobs", "two"]).expect_err("refused");
        assert!(
            err.to_string().contains("DEMO_JOBS=two is not allowed"),
            "{err}"
        );
        assert_eq!(
            Demo::try_parse_from(["demo", "--jobs", "64"])
                .expect("ok")
                .jobs,
            64
        );
    }

    #[test]
    fn defaults_come_from_the_declaration_and_ignore_the_environment() {
        let demo: Demo = defaults_of(&["demo"]);
        assert_eq!((demo.jobs, demo.dir), (2, None));
        let demo: Demo = defaults_of(&["demo", "--dir", "x"]);
        assert_eq!(demo.dir.as_deref(), Some("x"));
    }

    #[test]
    fn the_reference_is_read_off_the_declaration() {
        use clap::CommandFactory;
        let docs = documented(&[("demo", Demo::command())]);
        assert_eq!(docs.len(), 2, "the hidden one is left out: {docs:?}");
        assert_eq!(docs[0].variable, "DEMO_JOBS");
        assert_eq!(docs[0].default, "2");
        assert_eq!(docs[0].allowed, "1–64");
        assert_eq!(docs[0].summary, "Jobs at once");
        let env = env_file("# header\n", &docs);
        assert!(
            env.contains("# Jobs at once. More words. [1–64]\nDEMO_JOBS=2\n"),
            "{env}"
        );
        assert!(env.contains("#DEMO_DIR=\n"), "{env}");
        assert!(markdown_table(&docs).contains("| `DEMO_DIR` | demo | — |  | Where to go. |"));
    }
}
