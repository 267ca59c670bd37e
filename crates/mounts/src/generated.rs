//! The files ocirun generates for each run: `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
//!
//! They live in the bundle directory, are bind-mounted read-write into the container, and are
//! thrown away with the bundle (BEHAVIOR.md "Mounts", Generated files). Their mounts use sources
//! relative to the bundle, which runc resolves against the bundle directory (runtime-spec
//! "Mounts": `source` may be relative to the bundle), so the spec is the same for
//! `ocirun spec` and `ocirun run`.

use std::path::{Path, PathBuf};

use ocirun_spec_gen::oci_spec::runtime::{Mount, MountBuilder};

use crate::MountsError;

/// One generated file: its name in the bundle and its destination in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The file's name inside the bundle directory, also the mount's (relative) source.
    pub bundle_name: &'static str,
    /// The absolute destination inside the container.
    pub destination: &'static str,
}

/// The generated files, in the order they are written.
pub const GENERATED_FILES: [GeneratedFile; 3] = [
    GeneratedFile {
        bundle_name: "hosts",
        destination: "/etc/hosts",
    },
    GeneratedFile {
        bundle_name: "hostname",
        destination: "/etc/hostname",
    },
    GeneratedFile {
        bundle_name: "resolv.conf",
        destination: "/etc/resolv.conf",
    },
];

/// The bind mounts of the generated files (`rbind`, `rprivate`, read-write), with sources
/// relative to the bundle directory.
pub fn generated_mounts() -> Vec<Mount> {
    GENERATED_FILES
        .iter()
        .map(|f| {
            MountBuilder::default()
                .destination(f.destination)
                .typ("bind")
                .source(f.bundle_name)
                .options(vec![
                    "rbind".to_owned(),
                    "rprivate".to_owned(),
                    "rw".to_owned(),
                ])
                .build()
                .unwrap_or_else(|e| panic!("generated mount {} is malformed: {e}", f.destination))
        })
        .collect()
}

/// The host files the generated ones are made from, read by [`HostNetworkFiles::read`] or
/// given by an embedder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNetworkFiles {
    /// The text of the host's `/etc/hosts` (empty when it has none).
    pub hosts: String,
    /// The text of the host's `/etc/resolv.conf` (empty when it has none).
    pub resolv_conf: String,
}

impl HostNetworkFiles {
    /// Reads the host's `/etc/hosts` and `/etc/resolv.conf`; a missing file reads as empty.
    ///
    /// # Errors
    /// [`MountsError::Host`] when a file exists but cannot be read.
    pub fn read() -> Result<Self, MountsError> {
        let read = |path: &str| match std::fs::read_to_string(path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(MountsError::Host {
                action: "read",
                path: path.into(),
                source,
            }),
        };
        Ok(Self {
            hosts: read("/etc/hosts")?,
            resolv_conf: read("/etc/resolv.conf")?,
        })
    }
}

/// The container's `/etc/hosts`: the host's entries, then `127.0.0.1 localhost` and
/// `::1 localhost` when no line maps `localhost` to that address, then `127.0.1.1 <hostname>`
/// unless some line already names the hostname. Lines are `IP<TAB>names`.
pub fn hosts_file(host_hosts: &str, hostname: &str) -> String {
    let mut out = String::new();
    let mut has_v4_localhost = false;
    let mut has_v6_localhost = false;
    let mut has_hostname = false;
    for line in host_hosts.lines() {
        let content = line.split('#').next().unwrap_or("");
        let mut fields = content.split_whitespace();
        if let Some(ip) = fields.next() {
            let names: Vec<&str> = fields.collect();
            if names.contains(&"localhost") {
                has_v4_localhost |= ip == "127.0.0.1";
                has_v6_localhost |= ip == "::1";
            }
            has_hostname |= names.contains(&hostname);
        }
        out.push_str(line);
        out.push('\n');
    }
    if !has_v4_localhost {
        out.push_str("127.0.0.1\tlocalhost\n");
    }
    if !has_v6_localhost {
        out.push_str("::1\tlocalhost\n");
    }
    if !has_hostname {
        out.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    out
}

/// Writes the generated files into `bundle_dir` (mode 0644): hosts from `host` and
/// `hostname`, `hostname` followed by a newline, and the host's resolv.conf as it is.
/// Returns their paths.
///
/// # Errors
/// [`MountsError::Host`] naming the file that could not be written.
pub fn write_generated_files(
    bundle_dir: &Path,
    host: &HostNetworkFiles,
    hostname: &str,
) -> Result<Vec<PathBuf>, MountsError> {
    let contents = [
        hosts_file(&host.hosts, hostname),
        format!("{hostname}\n"),
        host.resolv_conf.clone(),
    ];
    let mut written = Vec::new();
    for (file, content) in GENERATED_FILES.iter().zip(contents) {
        let path = bundle_dir.join(file.bundle_name);
        std::fs::write(&path, content).map_err(|source| MountsError::Host {
            action: "write",
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_adds_what_is_missing() {
        assert_eq!(
            hosts_file("10.0.0.1\tdb\n", "h1"),
            "10.0.0.1\tdb\n127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\th1\n"
        );
    }

    #[test]
    fn hosts_keeps_present_entries() {
        let host = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n# h1 in a comment\n127.0.1.1 vm h1\n";
        assert_eq!(hosts_file(host, "h1"), host);
        assert!(hosts_file(host, "other").ends_with("127.0.1.1\tother\n"));
    }

    #[test]
    fn files_are_written_into_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostNetworkFiles {
            hosts: String::new(),
            resolv_conf: "nameserver 1.1.1.1\n".into(),
        };
        let written = write_generated_files(dir.path(), &host, "box").unwrap();
        assert_eq!(written.len(), 3);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("hostname")).unwrap(),
            "box\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("resolv.conf")).unwrap(),
            "nameserver 1.1.1.1\n"
        );
        assert!(std::fs::read_to_string(dir.path().join("hosts"))
            .unwrap()
            .contains("127.0.1.1\tbox"));
    }

    #[test]
    fn mounts_are_relative_binds() {
        let m = generated_mounts();
        assert_eq!(m[0].destination(), Path::new("/etc/hosts"));
        assert_eq!(m[0].source().as_deref(), Some(Path::new("hosts")));
        assert_eq!(m[0].typ().as_deref(), Some("bind"));
    }
}
