//! The Debian fixture: `debootstrap --variant=minbase bookworm` from the machine's own mirror.
//!
//! The mirror is the first `debian` archive (not `debian-security`) that apt on this machine
//! uses, in this order:
//!
//! 1. the first matching `URIs:` value of an enabled stanza of
//!    `/etc/apt/sources.list.d/debian.sources` (deb822, `sources.list(5)`);
//! 2. the first matching `deb` line of `/etc/apt/sources.list`;
//! 3. `http://deb.debian.org/debian`.
//!
//! debootstrap copies the host's `/etc/hostname` and `/etc/resolv.conf` into its target; they
//! are removed again, as ocirun provides both at run time and the fixture must not depend on the
//! machine that built it.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::host;

/// The suite the fixture installs.
const SUITE: &str = "bookworm";

/// The mirror used when the machine's apt configuration names none.
const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

const DEB822_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const ONE_LINE_SOURCES: &str = "/etc/apt/sources.list";

/// Files that debootstrap copies from the host and the fixture must not have.
const HOST_COPIES: &[&str] = &["etc/hostname", "etc/resolv.conf"];

/// Builds the fixture in the existing, empty directory `root`.
pub(super) fn build(sh: &Shell, root: &Path) -> Result<()> {
    let debootstrap = host::find_admin_tool("debootstrap").context(
        "debootstrap not found in PATH or the sbin directories: install it \
         (apt-get install debootstrap)",
    )?;
    let mirror = mirror()?;
    eprintln!("debootstrap {SUITE} (minbase) from {mirror}; this takes a minute");
    cmd!(
        sh,
        "{debootstrap} --variant=minbase {SUITE} {root} {mirror}"
    )
    .env("PATH", host::admin_path()?)
    .run()
    .with_context(|| format!("debootstrap into {} failed", root.display()))?;

    for file in HOST_COPIES {
        let path = root.join(file);
        match fs::remove_file(&path) {
            Ok(()) => eprintln!(
                "removed {} (copied from the host by debootstrap)",
                path.display()
            ),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot remove {}", path.display()))
            }
        }
    }
    Ok(())
}

/// The Debian mirror of this machine (see the module docs for the order).
fn mirror() -> Result<String> {
    if let Some(text) = read_optional(DEB822_SOURCES)? {
        if let Some(uri) = mirror_from_deb822(&text) {
            return Ok(uri);
        }
    }
    if let Some(text) = read_optional(ONE_LINE_SOURCES)? {
        if let Some(uri) = mirror_from_one_line(&text) {
            return Ok(uri);
        }
    }
    Ok(FALLBACK_MIRROR.to_string())
}

fn read_optional(path: &str) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {path}")),
    }
}

/// Whether `uri` is an HTTP(S) URI of a Debian archive other than the security one.
fn is_main_archive(uri: &str) -> bool {
    (uri.starts_with("http://") || uri.starts_with("https://"))
        && !uri.contains("debian-security")
        && !uri.contains("security.debian.org")
}

/// The first main-archive URI in the `URIs:` fields of the enabled stanzas of a deb822 file.
fn mirror_from_deb822(text: &str) -> Option<String> {
    let mut stanzas = vec![Vec::<(String, String)>::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            stanzas.push(Vec::new());
        } else if line.starts_with('#') {
            continue;
        } else if line.starts_with([' ', '\t']) {
            // A continuation line extends the previous field's value.
            if let Some((_, value)) = stanzas.last_mut().and_then(|stanza| stanza.last_mut()) {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            if let Some(stanza) = stanzas.last_mut() {
                stanza.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    stanzas
        .iter()
        .filter(|stanza| {
            !stanza
                .iter()
                .any(|(name, value)| name == "enabled" && value.eq_ignore_ascii_case("no"))
        })
        .flat_map(|stanza| stanza.iter().filter(|(name, _)| name == "uris"))
        .flat_map(|(_, value)| value.split_whitespace())
        .find(|uri| is_main_archive(uri))
        .map(str::to_string)
}

/// The first main-archive URI of a `deb` line of a one-line-style `sources.list`.
fn mirror_from_one_line(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("deb"))
        .filter(|rest| rest.starts_with([' ', '\t']))
        .filter_map(|rest| {
            let rest = rest.trim_start();
            // Skip an option list: `deb [arch=amd64 signed-by=...] URI SUITE COMPONENT...`.
            let rest = match rest.strip_prefix('[') {
                Some(options) => options.split_once(']')?.1,
                None => rest,
            };
            rest.split_whitespace().next()
        })
        .find(|uri| is_main_archive(uri))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_skips_security_and_disabled_stanzas() {
        let text = "\
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian

# http://snapshot.debian.org/archive/debian/20250520T000000Z
Types: deb
URIs:
 http://security.debian.org/debian-security
 http://mirror.example/debian
Suites: bookworm bookworm-updates
";
        assert_eq!(
            mirror_from_deb822(text).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(mirror_from_deb822("Types: deb\nSuites: bookworm\n"), None);
    }

    #[test]
    fn deb822_as_shipped_by_bookworm_images() {
        let text = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
";
        assert_eq!(
            mirror_from_deb822(text).as_deref(),
            Some("http://deb.debian.org/debian")
        );
    }

    #[test]
    fn one_line_sources() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://ftp.example.org/debian/ bookworm main
deb http://later.example/debian bookworm main
";
        assert_eq!(
            mirror_from_one_line(text).as_deref(),
            Some("https://ftp.example.org/debian/")
        );
        assert_eq!(
            mirror_from_one_line("debx http://x/debian bookworm main\n"),
            None
        );
    }
}
