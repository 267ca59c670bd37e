//! The files ocirun generates for each run: `/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf` and `/run/.containerenv`; and an empty `/etc/passwd` or `/etc/group`
//! over a rootfs's own that the runtime cannot read.
//!
//! They live in the bundle directory, are bind-mounted read-write into the container, and are
//! thrown away with the bundle (docs/ocirun-run.md "Mounts"). Their mounts use sources relative
//! to the bundle, which runc resolves against the bundle directory (runtime-spec
//! "Mounts": `source` may be relative to the bundle), so the spec is the same for
//! `ocirun spec` and `ocirun run`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use crate::network::{hosts_file, resolv_conf, DnsOptions, HostEntry};
use crate::MountsError;

/// One generated file: its name in the bundle and its destination in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GeneratedFile {
    /// The file's name inside the bundle directory, also the mount's (relative) source.
    pub(crate) bundle_name: &'static str,
    /// The absolute destination inside the container.
    pub(crate) destination: &'static str,
}

/// The generated files, in the order they are written.
pub(crate) const GENERATED_FILES: [GeneratedFile; 6] = [
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
    GeneratedFile {
        bundle_name: "containerenv",
        destination: "/run/.containerenv",
    },
    GeneratedFile {
        bundle_name: "passwd",
        destination: "/etc/passwd",
    },
    GeneratedFile {
        bundle_name: "group",
        destination: "/etc/group",
    },
];

/// The contents of `/run/.containerenv` (podman's, which tools read to learn that they run
/// in a container): `engine="ocirun-VERSION"`, `name`, `id`, `rootless=0|1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEnv {
    /// `ocirun-VERSION`.
    pub engine: String,
    /// The container's `--name`, or empty.
    pub name: String,
    /// The container id.
    pub id: String,
    /// Whether ocirun runs without root (`rootless=1`).
    pub rootless: bool,
}

impl ContainerEnv {
    /// The file for the container `id` named `name` (empty without `--name`), engine
    /// `ocirun-` and this crate's version.
    pub fn new(name: &str, id: &str, rootless: bool) -> Self {
        Self {
            engine: format!("ocirun-{}", env!("CARGO_PKG_VERSION")),
            name: name.to_owned(),
            id: id.to_owned(),
            rootless,
        }
    }

    /// The file's text: `key="value"` lines (quotes and backslashes escaped) and
    /// `rootless=0|1`.
    pub fn render(&self) -> String {
        let quote = |s: &str| s.replace('\\', r"\\").replace('"', "\\\"");
        format!(
            "engine=\"{}\"\nname=\"{}\"\nid=\"{}\"\nrootless={}\n",
            quote(&self.engine),
            quote(&self.name),
            quote(&self.id),
            u8::from(self.rootless)
        )
    }
}

/// What shapes the generated files beyond the host's own files and the hostname.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedOptions {
    /// `--add-host` entries, written first into `/etc/hosts`.
    pub add_hosts: Vec<HostEntry>,
    /// `--no-hosts`: no generated `/etc/hosts`; the rootfs's own file stays.
    pub no_hosts: bool,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: DnsOptions,
    /// `/run/.containerenv`, when set.
    pub container_env: Option<ContainerEnv>,
    /// No generated `/etc/hostname` (a joined UTS namespace, whose name ocirun cannot know):
    /// the rootfs's own file stays.
    pub no_hostname: bool,
    /// `--read-only`: the generated files are mounted read-only too (`ro,nosuid,noexec,
    /// nodev`), as podman mounts them.
    pub read_only: bool,
    /// An `/etc/passwd` for the container (the rootfs's with an entry added: podman's
    /// `--userns keep-id` adds the user's), when set.
    pub passwd: Option<String>,
    /// An `/etc/group` for the container, likewise.
    pub group: Option<String>,
}

impl GeneratedOptions {
    /// The generated files in effect: all of [`GENERATED_FILES`] but `/etc/hosts` with
    /// `--no-hosts`, `/etc/hostname` with `no_hostname`, `/etc/resolv.conf` with `--dns
    /// none`, `/run/.containerenv` without a [`ContainerEnv`], and `/etc/passwd` and
    /// `/etc/group` when not set.
    pub(crate) fn files(&self) -> Vec<GeneratedFile> {
        GENERATED_FILES
            .iter()
            .copied()
            .filter(|f| match f.bundle_name {
                "hosts" => !self.no_hosts,
                "hostname" => !self.no_hostname,
                "resolv.conf" => !self.dns.none,
                "containerenv" => self.container_env.is_some(),
                "passwd" => self.passwd.is_some(),
                "group" => self.group.is_some(),
                _ => true,
            })
            .collect()
    }
}

/// The bind mounts of the generated files in effect (`rbind`, `rprivate`, read-write; with
/// `read_only`, `ro,nosuid,noexec,nodev`), with sources relative to the bundle directory.
pub(crate) fn generated_mounts(options: &GeneratedOptions) -> Vec<Mount> {
    let flags: &[&str] = if options.read_only {
        &["rbind", "rprivate", "ro", "nosuid", "noexec", "nodev"]
    } else {
        &["rbind", "rprivate", "rw"]
    };
    options
        .files()
        .iter()
        .map(|f| {
            MountBuilder::default()
                .destination(f.destination)
                .typ("bind")
                .source(f.bundle_name)
                .options(flags.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
                .build()
                .unwrap_or_else(|e| panic!("generated mount {} is malformed: {e}", f.destination))
        })
        .collect()
}

/// systemd-resolved's file of upstream nameservers, used with a network namespace when the
/// host's resolv.conf points at its loopback stub.
pub(crate) const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The host files the generated ones are made from, read by [`HostNetworkFiles::read`] or
/// given by an embedder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNetworkFiles {
    /// The text of the host's `/etc/hosts` (empty when it has none).
    pub hosts: String,
    /// The text of the host's `/etc/resolv.conf` (empty when it has none).
    pub resolv_conf: String,
    /// The text of systemd-resolved's `/run/systemd/resolve/resolv.conf`, when it exists.
    pub resolved_upstream: Option<String>,
    /// The host's hostname: `/etc/hostname` holds it when the container has the host's UTS
    /// namespace (the spec sets no hostname).
    pub hostname: String,
}

impl HostNetworkFiles {
    /// Reads the host's `/etc/hosts`, `/etc/resolv.conf` and systemd-resolved's
    /// `/run/systemd/resolve/resolv.conf` (a missing file reads as empty, `None` for the
    /// last), and the host's hostname (`/proc/sys/kernel/hostname`, empty when it cannot be
    /// read).
    ///
    /// # Errors
    /// [`MountsError::Host`] when a file exists but cannot be read.
    pub fn read() -> Result<Self, MountsError> {
        let read = |path: &str| {
            let fail = |source| MountsError::Host {
                action: "read",
                path: path.into(),
                source,
            };
            match crate::read_input_file(path) {
                Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
                    fail(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not UTF-8 text",
                    ))
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(fail(source)),
            }
        };
        Ok(Self {
            hosts: read("/etc/hosts")?.unwrap_or_default(),
            resolv_conf: read("/etc/resolv.conf")?.unwrap_or_default(),
            resolved_upstream: read(RESOLVED_UPSTREAM)?,
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim_end().to_owned())
                .unwrap_or_default(),
        })
    }
}

/// Writes the generated files in effect into `bundle_dir`: hosts from `host`, `hostname` and
/// the `--add-host` entries ([`hosts_file`]); `hostname` followed by a newline; resolv.conf
/// ([`resolv_conf`], `netns` telling whether the container has its own network namespace);
/// `.containerenv`. Returns their paths.
///
/// # Errors
/// [`MountsError::Host`] naming the file that could not be written.
pub(crate) fn write_generated_files(
    bundle_dir: &Path,
    host: &HostNetworkFiles,
    hostname: &str,
    options: &GeneratedOptions,
    netns: bool,
) -> Result<Vec<PathBuf>, MountsError> {
    let mut written = Vec::new();
    for file in options.files() {
        let content = match file.bundle_name {
            "hosts" => hosts_file(&host.hosts, hostname, &options.add_hosts),
            "hostname" => format!("{hostname}\n"),
            "resolv.conf" => resolv_conf(
                &host.resolv_conf,
                host.resolved_upstream.as_deref(),
                netns,
                &options.dns,
            ),
            "passwd" => options.passwd.clone().unwrap_or_default(),
            "group" => options.group.clone().unwrap_or_default(),
            _ => options
                .container_env
                .as_ref()
                .map(ContainerEnv::render)
                .unwrap_or_default(),
        };
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
    fn files_are_written_into_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostNetworkFiles {
            hosts: String::new(),
            resolv_conf: "nameserver 1.1.1.1\n".into(),
            resolved_upstream: None,
            hostname: "host".into(),
        };
        let options = GeneratedOptions {
            container_env: Some(ContainerEnv::new("n1", "abc", false)),
            ..GeneratedOptions::default()
        };
        let written = write_generated_files(dir.path(), &host, "box", &options, false).unwrap();
        assert_eq!(written.len(), 4);
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("hostname"), "box\n");
        assert_eq!(read("resolv.conf"), "nameserver 1.1.1.1\n");
        assert!(read("hosts").contains("127.0.1.1\tbox"));
        assert_eq!(
            read("containerenv"),
            format!(
                "engine=\"ocirun-{}\"\nname=\"n1\"\nid=\"abc\"\nrootless=0\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn no_hosts_and_dns_none_leave_their_files_out() {
        let options = GeneratedOptions {
            no_hosts: true,
            dns: DnsOptions {
                none: true,
                ..DnsOptions::default()
            },
            ..GeneratedOptions::default()
        };
        let dsts: Vec<&str> = options.files().iter().map(|f| f.destination).collect();
        assert_eq!(dsts, ["/etc/hostname"]);
        assert_eq!(generated_mounts(&options).len(), 1);
    }

    #[test]
    fn read_only_runs_get_read_only_files_and_a_joined_uts_no_hostname() {
        let options = GeneratedOptions {
            read_only: true,
            no_hostname: true,
            ..GeneratedOptions::default()
        };
        let m = generated_mounts(&options);
        let dsts: Vec<_> = m
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(dsts, ["/etc/hosts", "/etc/resolv.conf"]);
        assert_eq!(
            m[0].options().as_ref().unwrap(),
            &["rbind", "rprivate", "ro", "nosuid", "noexec", "nodev"]
        );
    }

    #[test]
    fn unreadable_user_files_are_covered_with_empty_ones() {
        let dir = tempfile::tempdir().unwrap();
        let options = GeneratedOptions {
            passwd: Some(String::new()),
            group: Some(String::new()),
            ..GeneratedOptions::default()
        };
        let dsts: Vec<&str> = options.files().iter().map(|f| f.destination).collect();
        assert_eq!(
            dsts,
            [
                "/etc/hosts",
                "/etc/hostname",
                "/etc/resolv.conf",
                "/etc/passwd",
                "/etc/group"
            ]
        );
        write_generated_files(
            dir.path(),
            &HostNetworkFiles::default(),
            "h",
            &options,
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("passwd")).unwrap(), b"");
        assert_eq!(std::fs::read(dir.path().join("group")).unwrap(), b"");
    }

    #[test]
    fn mounts_are_relative_binds() {
        let m = generated_mounts(&GeneratedOptions::default());
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].destination(), Path::new("/etc/hosts"));
        assert_eq!(m[0].source().as_deref(), Some(Path::new("hosts")));
        assert_eq!(m[0].typ().as_deref(), Some("bind"));
    }
}
