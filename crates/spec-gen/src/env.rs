//! The process environment: an ordered list of `KEY=VALUE` entries merged by key.

use std::collections::HashMap;

use crate::SpecError;

/// The `PATH` every process starts with (docs/ocirun-run.md "Process"; the same value runc's
/// `runc spec`, buildah and podman use).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The proxy variables copied from ocirun's own environment unless `--http-proxy=false`
/// (podman's `--http-proxy`).
pub const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
];

/// Parses the text of an `--env-file` (podman-run(1) `--env-file`) into environment entries,
/// in order, to be merged after the image's Env and before `--env`.
///
/// Each line, with its leading whitespace removed, is an entry as `--env` takes it: `KEY=VALUE`
/// (the value is kept as it is, spaces and quotes included) or a bare `KEY` (copied from the
/// caller's environment when it has one). Empty lines and lines starting with `#` are skipped.
/// `file` names the file in errors.
///
/// ```
/// let entries = ocirun_spec_gen::parse_env_file("vars.env", "# comment\n\nA=1\n  B= two \nHOME\n")?;
/// assert_eq!(entries, ["A=1", "B= two ", "HOME"]);
/// # Ok::<(), ocirun_spec_gen::SpecError>(())
/// ```
///
/// # Errors
/// [`SpecError::InvalidEnvFile`] for a line without a key (`=x`) or with a NUL byte.
pub fn parse_env_file(file: &str, text: &str) -> Result<Vec<String>, SpecError> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| SpecError::InvalidEnvFile {
            file: file.to_owned(),
            line: i + 1,
            reason: format!("{line:?}: {reason}"),
        };
        if line.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        if line.starts_with('=') {
            return Err(bad("empty name"));
        }
        entries.push(line.to_owned());
    }
    Ok(entries)
}

/// An environment under construction: entries keep the position where their key first
/// appeared, and a later value for the same key replaces the earlier one. Each key is found
/// through an index, so merging N entries takes time linear in N.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Env {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Env {
    /// Sets `key` to `value`, replacing an earlier value in place.
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        match self.index.get(key) {
            Some(&i) => self.entries[i].1 = value.to_owned(),
            None => {
                self.index.insert(key.to_owned(), self.entries.len());
                self.entries.push((key.to_owned(), value.to_owned()));
            }
        }
    }

    /// Sets `key` only when it is absent.
    pub(crate) fn set_default(&mut self, key: &str, value: &str) {
        if self.get(key).is_none() {
            self.set(key, value);
        }
    }

    /// Removes `key`, if present.
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(i) = self.index.remove(key) {
            self.entries.remove(i);
            for (k, _) in &self.entries[i..] {
                if let Some(pos) = self.index.get_mut(k) {
                    *pos -= 1;
                }
            }
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].1.as_str())
    }

    /// Merges one `KEY=VALUE` entry; a bare `KEY` takes its value from `lookup` and is skipped
    /// when `lookup` has none (podman's `--env KEY`).
    ///
    /// # Errors
    /// [`SpecError::InvalidEnv`] for an empty key or a NUL byte.
    pub(crate) fn merge_entry(
        &mut self,
        entry: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), SpecError> {
        if entry.contains('\0') {
            return Err(SpecError::InvalidEnv(
                entry.to_owned(),
                "contains a NUL byte",
            ));
        }
        match entry.split_once('=') {
            Some(("", _)) => Err(SpecError::InvalidEnv(entry.to_owned(), "empty name")),
            Some((key, value)) => {
                self.set(key, value);
                Ok(())
            }
            None if entry.is_empty() => Err(SpecError::InvalidEnv(entry.to_owned(), "empty name")),
            None => {
                if let Some(value) = lookup(entry) {
                    self.set(entry, &value);
                }
                Ok(())
            }
        }
    }

    /// Merges one entry of `--env` or `--env-file`, whose bare keys come from `caller` (the
    /// caller's environment): as [`Self::merge_entry`], and a bare `PREFIX*` (no `=`) sets
    /// every variable of `caller` whose name starts with PREFIX, in the order of their names
    /// (`*` alone: all of them), podman's rule.
    ///
    /// # Errors
    /// [`SpecError::InvalidEnv`] for an empty key or a NUL byte.
    pub(crate) fn merge_caller_entry(
        &mut self,
        entry: &str,
        caller: &[(String, String)],
    ) -> Result<(), SpecError> {
        match entry.strip_suffix('*') {
            Some(prefix) if !entry.contains(['=', '\0']) => {
                let mut matches: Vec<&(String, String)> = caller
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .collect();
                matches.sort();
                for (key, value) in matches {
                    self.set(key, value);
                }
                Ok(())
            }
            _ => self.merge_entry(entry, |key| {
                caller
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            }),
        }
    }

    /// The entries as `KEY=VALUE` strings, in order.
    pub(crate) fn into_strings(self) -> Vec<String> {
        self.entries
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn later_values_replace_in_place() {
        let mut env = Env::default();
        for e in ["A=1", "B=2", "A=3", "C==x"] {
            env.merge_entry(e, |_| None).unwrap();
        }
        assert_eq!(env.into_strings(), ["A=3", "B=2", "C==x"]);
    }

    #[test]
    fn a_hundred_thousand_entries_merge_in_linear_time() {
        let mut env = Env::default();
        let entries: Vec<String> = (0..100_000).map(|i| format!("K{i}={i}")).collect();
        for e in entries.iter().chain(&entries) {
            env.merge_entry(e, |_| None).unwrap();
        }
        assert_eq!(env.get("K99999"), Some("99999"));
        assert_eq!(env.into_strings().len(), 100_000);
    }

    #[test]
    fn bare_key_copies_from_lookup_or_is_skipped() {
        let mut env = Env::default();
        env.merge_entry("HOME", |k| (k == "HOME").then(|| "/h".to_owned()))
            .unwrap();
        env.merge_entry("MISSING", |_| None).unwrap();
        assert_eq!(env.into_strings(), ["HOME=/h"]);
    }

    #[test]
    fn removal_keeps_the_order_and_the_index() {
        let mut env = Env::default();
        for e in ["A=1", "B=2", "C=3", "D=4"] {
            env.merge_entry(e, |_| None).unwrap();
        }
        env.remove("B");
        env.remove("missing");
        env.set("C", "30");
        env.set("E", "5");
        assert_eq!(env.get("D"), Some("4"));
        assert_eq!(env.into_strings(), ["A=1", "C=30", "D=4", "E=5"]);
    }

    #[test]
    fn a_trailing_star_copies_the_callers_matching_variables() {
        let caller: Vec<(String, String)> = [("CI_B", "b"), ("HOME", "/h"), ("CI_A", "a")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut env = Env::default();
        env.merge_caller_entry("CI_*", &caller).unwrap();
        env.merge_caller_entry("NONE_*", &caller).unwrap();
        env.merge_caller_entry("HOME", &caller).unwrap();
        env.merge_caller_entry("X*=y", &caller).unwrap();
        assert_eq!(env.into_strings(), ["CI_A=a", "CI_B=b", "HOME=/h", "X*=y"]);
        let mut all = Env::default();
        all.merge_caller_entry("*", &caller).unwrap();
        assert_eq!(all.into_strings(), ["CI_A=a", "CI_B=b", "HOME=/h"]);
        assert!(Env::default().merge_caller_entry("A\0*", &caller).is_err());
    }

    #[test]
    fn invalid_entries() {
        let mut env = Env::default();
        assert_eq!(
            env.merge_entry("=v", |_| None).unwrap_err().to_string(),
            r#"invalid environment variable "=v": empty name"#
        );
        assert!(env.merge_entry("", |_| None).is_err());
        assert!(env.merge_entry("A=\0", |_| None).is_err());
    }

    #[test]
    fn env_files() {
        assert_eq!(
            parse_env_file("f", "\r\n#x\n\tK=v w\r\n").unwrap(),
            ["K=v w"]
        );
        assert_eq!(
            parse_env_file("f.env", "A=1\n=2\n")
                .unwrap_err()
                .to_string(),
            r#"invalid line 2 of env file "f.env": "=2": empty name"#
        );
        assert!(parse_env_file("f", "A=\0").is_err());
    }

    proptest! {
        #[test]
        fn env_file_parser_never_panics_and_keeps_valid_lines(text in "[A-Z=a #\n\t]{0,60}") {
            if let Ok(entries) = parse_env_file("f", &text) {
                let mut env = Env::default();
                for entry in &entries {
                    prop_assert!(!entry.starts_with('=') && !entry.is_empty());
                    prop_assert!(env.merge_entry(entry, |_| None).is_ok());
                }
            }
        }

        #[test]
        fn env_entries_never_panic(entry in ".{0,30}") {
            let mut env = Env::default();
            if env.merge_entry(&entry, |_| Some("v".into())).is_ok() {
                let key = entry.split('=').next().unwrap_or_default();
                prop_assert!(!key.is_empty());
                prop_assert!(env.get(key).is_some());
            }
        }

        #[test]
        fn valid_entries_round_trip(key in "[A-Za-z_][A-Za-z0-9_]{0,10}", value in "[^\0]{0,20}") {
            let mut env = Env::default();
            env.merge_entry(&format!("{key}={value}"), |_| None).unwrap();
            prop_assert_eq!(env.get(&key), Some(value.as_str()));
            prop_assert_eq!(env.into_strings(), vec![format!("{key}={value}")]);
        }
    }
}
