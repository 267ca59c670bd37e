//! Secrets from mounts.conf (containers-mounts.conf(5), buildah's "default mounts").
//!
//! Each line of a mounts file is `SRC:DST` or `SRC` (then DST = SRC); `#` starts a comment.
//! SRC is a host path; its content is copied, symlinks followed and modes and owners kept,
//! into the container's directory and bind-mounted at DST, so the container never sees the
//! host's files themselves. A SRC that does not exist is skipped with a warning.

use std::path::{Path, PathBuf};

use crate::user_mount::clean_destination;
use crate::{MountSpecError, MountsError};

/// The mounts files read when the user names none, in order (containers-mounts.conf(5)).
pub const DEFAULT_MOUNTS_FILES: [&str; 2] = [
    "/usr/share/containers/mounts.conf",
    "/etc/containers/mounts.conf",
];

/// One line of a mounts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The host path (absolute).
    pub source: PathBuf,
    /// The container path (absolute, lexically clean).
    pub destination: PathBuf,
}

/// Parses the text of the mounts file `file` (named in errors).
///
/// # Errors
/// [`MountSpecError::MountsConf`] naming the file and line: a relative path, a `..` leaving
/// `/`, or more than two fields.
pub(crate) fn parse_mounts_conf(file: &str, text: &str) -> Result<Vec<SecretSpec>, MountSpecError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fail = |reason: String| MountSpecError::MountsConf {
            file: file.to_owned(),
            line: i + 1,
            text: raw.to_owned(),
            reason,
        };
        let (src, dst) = match line.split(':').collect::<Vec<_>>().as_slice() {
            [src] => (*src, *src),
            [src, dst] => (*src, *dst),
            _ => return Err(fail("expected SRC or SRC:DST".to_owned())),
        };
        if !src.starts_with('/') {
            return Err(fail(format!("source {src:?} is not an absolute path")));
        }
        let destination = clean_destination(dst).map_err(fail)?;
        out.push(SecretSpec {
            source: PathBuf::from(src),
            destination,
        });
    }
    Ok(out)
}

/// Reads the mounts files `files` in order (a missing file is no error) and returns their
/// secrets, leaving out, with a warning, those whose source does not exist.
///
/// # Errors
/// [`MountsError::Host`] when a file exists but cannot be read or is not a regular file of at
/// most 16 MiB ([`read_input_file`](crate::read_input_file)); [`MountsError::Spec`] for a
/// malformed line.
pub fn load_secrets<P: AsRef<Path>>(files: &[P]) -> Result<Vec<SecretSpec>, MountsError> {
    let mut out = Vec::new();
    for file in files {
        let file = file.as_ref();
        let text = match crate::read_input_file(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(MountsError::Host {
                    action: "read mounts file",
                    path: file.to_path_buf(),
                    source,
                })
            }
        };
        for secret in parse_mounts_conf(&file.display().to_string(), &text)? {
            if std::fs::metadata(&secret.source).is_ok() {
                out.push(secret);
            } else {
                tracing::warn!(
                    source = %secret.source.display(),
                    file = %file.display(),
                    "secret source does not exist: skipped"
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_and_comments() {
        let text = "# comment\n/usr/share/rhel/secrets:/run/secrets\n\n/etc/pki  # trailing\n";
        assert_eq!(
            parse_mounts_conf("m.conf", text).unwrap(),
            [
                SecretSpec {
                    source: "/usr/share/rhel/secrets".into(),
                    destination: "/run/secrets".into()
                },
                SecretSpec {
                    source: "/etc/pki".into(),
                    destination: "/etc/pki".into()
                },
            ]
        );
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let err = parse_mounts_conf("m.conf", "/a:/b\nrel:/x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid line 2 of mounts file "m.conf": "rel:/x": source "rel" is not an absolute path"#
        );
        let err = parse_mounts_conf("m.conf", "/a:/b:/c").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid line 1 of mounts file "m.conf": "/a:/b:/c": expected SRC or SRC:DST"#
        );
    }

    #[test]
    fn missing_sources_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mounts.conf");
        let there = dir.path().join("there");
        std::fs::create_dir(&there).unwrap();
        std::fs::write(
            &conf,
            format!("{}:/run/a\n/does/not/exist:/run/b\n", there.display()),
        )
        .unwrap();
        let secrets = load_secrets(&[conf, dir.path().join("absent.conf")]).unwrap();
        assert_eq!(
            secrets,
            [SecretSpec {
                source: there,
                destination: "/run/a".into()
            }]
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = parse_mounts_conf("f", &s);
        }

        #[test]
        fn well_formed_lines_parse(src in "/[a-z/]{1,10}", dst in "/[a-z]{1,10}") {
            let parsed = parse_mounts_conf("f", &format!("{src}:{dst}\n")).unwrap();
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0].source, Path::new(&src));
            prop_assert_eq!(&parsed[0].destination, Path::new(&dst));
        }
    }
}
