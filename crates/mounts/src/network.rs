//! The container's `/etc/hosts` and `/etc/resolv.conf`, and the flags that shape them:
//! `--add-host`, `--no-hosts`, `--dns`, `--dns-search`, `--dns-option` (podman-run(1)).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::MountSpecError;

/// One `--add-host NAME[;NAME...]:IP` entry (IPv6 addresses as they are, or in brackets:
/// `db:2001:db8::1`, `db:[2001:db8::1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The names, in order; at least one.
    pub names: Vec<String>,
    /// The address.
    pub ip: IpAddr,
}

impl FromStr for HostEntry {
    type Err = MountSpecError;

    fn from_str(spec: &str) -> Result<Self, MountSpecError> {
        let fail = |reason: String| MountSpecError::AddHost {
            spec: spec.to_owned(),
            reason,
        };
        // A name never holds a colon, so the first one ends the names.
        let (names, ip) = spec
            .split_once(':')
            .ok_or_else(|| fail("expected NAME:IP".to_owned()))?;
        let ip_text = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(ip);
        let ip: IpAddr = ip_text
            .parse()
            .map_err(|_| fail(format!("{ip:?} is not an IP address")))?;
        let names: Vec<String> = names.split(';').map(str::to_owned).collect();
        for name in &names {
            if name.is_empty() {
                return Err(fail("empty host name".to_owned()));
            }
            if let Some(c) = name
                .chars()
                .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '#' | '[' | ']'))
            {
                return Err(fail(format!("host name {name:?} contains {c:?}")));
            }
        }
        Ok(Self { names, ip })
    }
}

impl fmt::Display for HostEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.names.join(";"), self.ip)
    }
}

/// The resolver settings the user gave (`--dns`, `--dns-search`, `--dns-option`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsOptions {
    /// `--dns none`: no generated resolv.conf; the rootfs's own file stays.
    pub none: bool,
    /// `--dns IP`: these nameservers replace the host's.
    pub servers: Vec<IpAddr>,
    /// `--dns-search DOMAIN`: these replace the host's `search` (and `domain`) lines; `.`
    /// alone removes them.
    pub search: Vec<String>,
    /// `--dns-option OPT`: these replace the host's `options` lines.
    pub options: Vec<String>,
}

impl DnsOptions {
    /// Adds one `--dns` value: an IP address, or `none`.
    ///
    /// # Errors
    /// [`MountSpecError::Dns`] naming the value.
    pub fn add_server(&mut self, value: &str) -> Result<(), MountSpecError> {
        if value == "none" {
            self.none = true;
            return Ok(());
        }
        let ip = value.parse().map_err(|_| MountSpecError::Dns {
            flag: "--dns",
            value: value.to_owned(),
            reason: "not an IP address".to_owned(),
        })?;
        self.servers.push(ip);
        Ok(())
    }

    /// Adds one `--dns-search` value: a domain, or `.` for none.
    ///
    /// # Errors
    /// [`MountSpecError::Dns`] naming the value.
    pub fn add_search(&mut self, value: &str) -> Result<(), MountSpecError> {
        check_word("--dns-search", value)?;
        self.search.push(value.to_owned());
        Ok(())
    }

    /// Adds one `--dns-option` value (`ndots:2`, `edns0`, ...; resolv.conf(5)).
    ///
    /// # Errors
    /// [`MountSpecError::Dns`] naming the value.
    pub fn add_option(&mut self, value: &str) -> Result<(), MountSpecError> {
        check_word("--dns-option", value)?;
        self.options.push(value.to_owned());
        Ok(())
    }

    /// Whether `--dns none` conflicts with other settings.
    ///
    /// # Errors
    /// [`MountSpecError::Dns`] when `none` comes with servers, search domains or options.
    pub fn check(&self) -> Result<(), MountSpecError> {
        if self.none
            && !(self.servers.is_empty() && self.search.is_empty() && self.options.is_empty())
        {
            return Err(MountSpecError::Dns {
                flag: "--dns",
                value: "none".to_owned(),
                reason: "cannot be combined with other --dns, --dns-search or --dns-option values"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

fn check_word(flag: &'static str, value: &str) -> Result<(), MountSpecError> {
    let reason = if value.is_empty() {
        "empty"
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains white space"
    } else {
        return Ok(());
    };
    Err(MountSpecError::Dns {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    })
}

/// The container's `/etc/hosts` (docs/ocirun-run.md "Mounts", Generated files): the `--add-host`
/// entries first, as `IP<TAB>names`; then the host's file as it is; then
/// `127.0.0.1<TAB>localhost` and `::1<TAB>localhost` when no line maps `localhost` to that
/// address; then `127.0.1.1<TAB>HOSTNAME` unless some line already names the hostname (or the
/// hostname is empty, as with `--uts host`).
pub fn hosts_file(host_hosts: &str, hostname: &str, add_hosts: &[HostEntry]) -> String {
    let mut out = String::new();
    let mut has_v4_localhost = false;
    let mut has_v6_localhost = false;
    let mut has_hostname = hostname.is_empty();
    for entry in add_hosts {
        out.push_str(&format!("{}\t{}\n", entry.ip, entry.names.join(" ")));
    }
    let host_lines = host_hosts.lines().map(|l| (l, true));
    let added = out.clone();
    for (line, copy) in added.lines().map(|l| (l, false)).chain(host_lines) {
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
        if copy {
            out.push_str(line);
            out.push('\n');
        }
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

/// Whether a `nameserver` address is on the loopback network (127.0.0.0/8 or ::1), which
/// from inside another network namespace is the container's own loopback, not the host's
/// resolver.
fn is_loopback(server: &str) -> bool {
    let addr = server.split('%').next().unwrap_or(server);
    addr.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The keyword of a resolv.conf line (`nameserver`, `search`, ...), if any.
fn keyword(line: &str) -> Option<&str> {
    let first = line.split_whitespace().next()?;
    (!first.starts_with(['#', ';'])).then_some(first)
}

/// The container's `/etc/resolv.conf` (docs/ocirun-run.md "Mounts", Generated files):
///
/// 1. the base is the host's file; with a network namespace (`netns`), when that file names a
///    loopback nameserver (systemd-resolved's stub `127.0.0.53`) and `resolved_upstream`
///    (systemd-resolved's `/run/systemd/resolve/resolv.conf`) is given, that file is the base;
/// 2. with a network namespace, loopback nameservers are dropped (they would be the
///    container's own loopback);
/// 3. `--dns` replaces every `nameserver` line, `--dns-search` every `search`/`domain` line
///    (`.` alone: none), `--dns-option` every `options` line; the new lines are appended in
///    that order: `search`, `nameserver`s, `options`. Every other line stays as it was.
pub fn resolv_conf(
    host: &str,
    resolved_upstream: Option<&str>,
    netns: bool,
    dns: &DnsOptions,
) -> String {
    let base = match resolved_upstream {
        Some(upstream)
            if netns
                && host.lines().any(|l| {
                    keyword(l) == Some("nameserver")
                        && l.split_whitespace().nth(1).is_some_and(is_loopback)
                }) =>
        {
            upstream
        }
        _ => host,
    };
    let mut out = String::new();
    for line in base.lines() {
        let keep = match keyword(line) {
            Some("nameserver") => {
                dns.servers.is_empty()
                    && !(netns && line.split_whitespace().nth(1).is_some_and(is_loopback))
            }
            Some("search" | "domain") => dns.search.is_empty(),
            Some("options") => dns.options.is_empty(),
            _ => true,
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !dns.search.is_empty() && dns.search != ["."] {
        let domains: Vec<&str> = dns
            .search
            .iter()
            .map(String::as_str)
            .filter(|d| *d != ".")
            .collect();
        out.push_str(&format!("search {}\n", domains.join(" ")));
    }
    for server in &dns.servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(s: &str) -> HostEntry {
        s.parse().unwrap()
    }

    #[test]
    fn add_host_forms() {
        let e = entry("db:2001:db8::1");
        assert_eq!(e.names, ["db"]);
        assert_eq!(e.ip.to_string(), "2001:db8::1");
        assert_eq!(entry("db:[2001:db8::1]"), e);
        let e = entry("a;b:10.0.0.1");
        assert_eq!(e.names, ["a", "b"]);
        assert_eq!(e.to_string(), "a;b:10.0.0.1");
        let err = |s: &str| s.parse::<HostEntry>().unwrap_err().to_string();
        assert_eq!(err("db"), r#"invalid --add-host "db": expected NAME:IP"#);
        assert_eq!(
            err("db:host-gateway"),
            r#"invalid --add-host "db:host-gateway": "host-gateway" is not an IP address"#
        );
        assert_eq!(
            err(":1.2.3.4"),
            r#"invalid --add-host ":1.2.3.4": empty host name"#
        );
        assert_eq!(
            err("a b:1.2.3.4"),
            r#"invalid --add-host "a b:1.2.3.4": host name "a b" contains ' '"#
        );
    }

    #[test]
    fn hosts_adds_what_is_missing() {
        assert_eq!(
            hosts_file("10.0.0.1\tdb\n", "h1", &[]),
            "10.0.0.1\tdb\n127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\th1\n"
        );
    }

    #[test]
    fn hosts_keeps_present_entries() {
        let host = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n# h1 in a comment\n127.0.1.1 vm h1\n";
        assert_eq!(hosts_file(host, "h1", &[]), host);
        assert!(hosts_file(host, "other", &[]).ends_with("127.0.1.1\tother\n"));
        assert_eq!(hosts_file(host, "", &[]), host);
    }

    #[test]
    fn added_hosts_come_first_and_count_for_the_hostname() {
        let added = [entry("db:2001:db8::1"), entry("h1;alias:192.0.2.7")];
        assert_eq!(
            hosts_file("127.0.0.1 localhost\n", "h1", &added),
            "2001:db8::1\tdb\n192.0.2.7\th1 alias\n127.0.0.1 localhost\n::1\tlocalhost\n"
        );
    }

    const HOST: &str = "# generated\nnameserver 127.0.0.53\nsearch lan\noptions edns0\n";
    const UPSTREAM: &str = "nameserver 192.0.2.1\nnameserver ::1\nsearch corp\n";

    #[test]
    fn resolv_conf_without_a_network_namespace_is_the_hosts() {
        assert_eq!(
            resolv_conf(HOST, Some(UPSTREAM), false, &DnsOptions::default()),
            HOST
        );
    }

    #[test]
    fn resolv_conf_with_a_network_namespace_drops_loopback_servers() {
        assert_eq!(
            resolv_conf(HOST, Some(UPSTREAM), true, &DnsOptions::default()),
            "nameserver 192.0.2.1\nsearch corp\n"
        );
        assert_eq!(
            resolv_conf(HOST, None, true, &DnsOptions::default()),
            "# generated\nsearch lan\noptions edns0\n"
        );
        // The upstream file is used only when the host's points at a loopback resolver.
        let host = "nameserver 198.51.100.1\n";
        assert_eq!(
            resolv_conf(host, Some(UPSTREAM), true, &DnsOptions::default()),
            host
        );
    }

    #[test]
    fn dns_flags_replace_their_lines() {
        let mut dns = DnsOptions::default();
        dns.add_server("192.0.2.53").unwrap();
        dns.add_server("2001:db8::53").unwrap();
        dns.add_search("example.com").unwrap();
        dns.add_option("ndots:2").unwrap();
        assert_eq!(
            resolv_conf(HOST, None, false, &dns),
            "# generated\nsearch example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\n"
        );
        let mut dns = DnsOptions::default();
        dns.add_search(".").unwrap();
        assert_eq!(
            resolv_conf(HOST, None, false, &dns),
            "# generated\nnameserver 127.0.0.53\noptions edns0\n"
        );
        let mut dns = DnsOptions::default();
        dns.add_server("127.0.0.1").unwrap();
        assert_eq!(
            resolv_conf(HOST, None, true, &dns),
            "# generated\nsearch lan\noptions edns0\nnameserver 127.0.0.1\n",
            "a loopback server the user asked for stays"
        );
    }

    #[test]
    fn dns_values_are_checked() {
        let mut dns = DnsOptions::default();
        assert_eq!(
            dns.add_server("1.2.3").unwrap_err().to_string(),
            r#"invalid --dns "1.2.3": not an IP address"#
        );
        assert_eq!(
            dns.add_option("a b").unwrap_err().to_string(),
            r#"invalid --dns-option "a b": contains white space"#
        );
        dns.add_server("none").unwrap();
        dns.check().unwrap();
        dns.add_search("x").unwrap();
        assert_eq!(
            dns.check().unwrap_err().to_string(),
            r#"invalid --dns "none": cannot be combined with other --dns, --dns-search or --dns-option values"#
        );
    }

    fn host_entry() -> impl Strategy<Value = HostEntry> {
        (
            proptest::collection::vec("[a-z0-9.-]{1,10}", 1..4),
            any::<IpAddr>(),
        )
            .prop_map(|(names, ip)| HostEntry { names, ip })
    }

    proptest! {
        #[test]
        fn add_host_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<HostEntry>();
        }

        #[test]
        fn add_host_round_trips(e in host_entry()) {
            prop_assert_eq!(e.to_string().parse::<HostEntry>().unwrap(), e);
        }

        #[test]
        fn hosts_lists_every_entry_then_the_host_then_localhost(
            entries in proptest::collection::vec(host_entry(), 0..4),
            host in "([a-z0-9.:# \t]{0,20}\n){0,4}",
            hostname in "[a-z]{1,10}",
        ) {
            let out = hosts_file(&host, &hostname, &entries);
            let mut lines = out.lines();
            for e in &entries {
                let expected = format!("{}\t{}", e.ip, e.names.join(" "));
                prop_assert_eq!(lines.next(), Some(expected.as_str()));
            }
            for line in host.lines() {
                prop_assert_eq!(lines.next(), Some(line));
            }
            let maps = |ip: Option<&str>, name: &str| out.lines().any(|l| {
                let mut f = l.split('#').next().unwrap_or("").split_whitespace();
                let first = f.next();
                first.is_some() && (ip.is_none() || first == ip) && f.any(|n| n == name)
            });
            prop_assert!(maps(Some("127.0.0.1"), "localhost"), "{}", out);
            prop_assert!(maps(None, &hostname), "{}", out);
        }

        #[test]
        fn resolv_conf_with_netns_has_no_loopback_server(
            host in "((nameserver|search|options|#) [0-9a-f.:]{1,15}\n){0,6}",
            servers in proptest::collection::vec(any::<IpAddr>(), 0..3),
        ) {
            let dns = DnsOptions { servers: servers.clone(), ..DnsOptions::default() };
            let out = resolv_conf(&host, None, true, &dns);
            let listed: Vec<&str> = out
                .lines()
                .filter(|l| keyword(l) == Some("nameserver"))
                .filter_map(|l| l.split_whitespace().nth(1))
                .collect();
            if servers.is_empty() {
                prop_assert!(listed.iter().all(|s| !is_loopback(s)), "{}", out);
            } else {
                let expected: Vec<String> = servers.iter().map(ToString::to_string).collect();
                prop_assert_eq!(listed, expected);
            }
        }
    }
}
