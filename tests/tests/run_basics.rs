//! The basic contract of `ocirun run`: the command runs in the rootfs, its output arrives, the
//! command line is split as buildah users expect, and the generated files exist only during
//! the run.

use ocirun_e2e::Sandbox;

#[test]
fn echo_prints_hello() {
    let sb = Sandbox::busybox();
    sb.run(["--", "echo", "hello"])
        .run()
        .assert_success("hello\n");
    sb.assert_nothing_left();
}

#[test]
fn command_without_separator_runs_too() {
    let sb = Sandbox::busybox();
    sb.run(["echo", "hello"]).run().assert_success("hello\n");
    sb.assert_nothing_left();
}

#[test]
fn apt_get_runs_in_debian() {
    let sb = Sandbox::debian();
    let out = sb.run(["--", "/usr/bin/apt-get", "--version"]).run();
    out.assert_code(0);
    assert!(
        out.stdout_text().starts_with("apt "),
        "stdout: {:?}; stderr: {:?}",
        out.stdout_text(),
        out.stderr
    );
    // A command found through PATH and a user from Debian's own /etc/passwd.
    sb.run(["--user", "nobody", "--", "sh", "-c", "id -un; echo $HOME"])
        .run()
        .assert_success("nobody\n/nonexistent\n");
    // The fixture has none of these: ocirun created the mount targets and removed them.
    for name in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        assert!(
            !sb.rootfs().join(name).exists(),
            "{name} was left in the Debian rootfs"
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn later_separators_belong_to_the_command() {
    let sb = Sandbox::busybox();
    sb.run(["echo", "--", "-n", "x"])
        .run()
        .assert_success("-- -n x\n");
    sb.assert_nothing_left();
}

#[test]
fn only_the_first_of_two_leading_separators_is_dropped() {
    let sb = Sandbox::busybox();
    sb.run(["--", "echo", "--", "x"])
        .run()
        .assert_success("-- x\n");
    sb.assert_nothing_left();
}

#[test]
fn generated_files_exist_during_the_run_only() {
    let sb = Sandbox::busybox();
    for name in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        assert!(
            sb.tree_before().unwrap().get(name).is_none(),
            "the busybox fixture must not have /{name} for this test"
        );
    }

    sb.run(["--hostname", "h2", "--", "cat", "/etc/hostname"])
        .run()
        .assert_success("h2\n");

    let out = sb
        .run(["--hostname", "h2", "--", "cat", "/etc/hosts"])
        .run();
    out.assert_code(0);
    let hosts = out.stdout_text();
    // The host's own lines are copied as they are (with whatever whitespace they use); the
    // localhost mapping is there either way, and the hostname line is ocirun's own.
    let maps = |ip: &str, name: &str| {
        hosts.lines().any(|l| {
            let mut fields = l.split_whitespace();
            fields.next() == Some(ip) && fields.any(|n| n == name)
        })
    };
    assert!(maps("127.0.0.1", "localhost"), "/etc/hosts: {hosts:?}");
    assert!(maps("::1", "localhost"), "/etc/hosts: {hosts:?}");
    assert!(hosts.ends_with("127.0.1.1\th2\n"), "/etc/hosts: {hosts:?}");
    assert_eq!(out.stderr, "");

    let out = sb.run(["--", "cat", "/etc/resolv.conf"]).run();
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    out.assert_success(&host_resolv);

    // Writes to the generated files are thrown away with the run.
    sb.run([
        "--",
        "sh",
        "-c",
        // A word: the default hostname is 12 random hex digits, which may hold "db".
        "echo 10.1.1.1 db >> /etc/hosts; grep -cw db /etc/hosts",
    ])
    .run()
    .assert_success("1\n");

    for name in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        assert!(
            !sb.rootfs().join(name).exists(),
            "{name} was left in the rootfs"
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn default_hostname_is_a_12_hex_digit_id() {
    let sb = Sandbox::busybox();
    let out = sb.run(["--", "hostname"]).run();
    out.assert_code(0);
    let name = out.stdout_text().strip_suffix('\n').unwrap_or_default();
    assert!(
        name.len() == 12 && name.bytes().all(|b| b.is_ascii_hexdigit()),
        "hostname {name:?}"
    );
    sb.assert_nothing_left();
}

#[test]
fn writes_of_the_command_into_the_rootfs_stay() {
    let sb = Sandbox::busybox();
    sb.run(["--", "sh", "-c", "echo kept > /tmp/out.txt"])
        .run()
        .assert_success("");
    assert_eq!(
        std::fs::read_to_string(sb.rootfs().join("tmp/out.txt")).unwrap(),
        "kept\n"
    );
    sb.assert_nothing_left_except(&["tmp/out.txt"]);
}
