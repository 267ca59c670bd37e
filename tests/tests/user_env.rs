//! The process: user, groups, HOME, working directory, environment, hostname.

use ocirun_e2e::Sandbox;

#[test]
fn user_by_name() {
    let sb = Sandbox::busybox();
    sb.run(["--user", "app", "--", "id", "-u"])
        .run()
        .assert_success("1000\n");
    sb.assert_nothing_left();
}

#[test]
fn user_by_name_gets_groups_and_home_from_the_rootfs() {
    let sb = Sandbox::busybox();
    // Primary group 1000 from /etc/passwd, wheel (10) because /etc/group lists app in it.
    sb.run([
        "--user",
        "app",
        "--",
        "sh",
        "-c",
        "id -g; id -G; echo $HOME",
    ])
    .run()
    .assert_success("1000\n1000 10\n/home/app\n");
    sb.assert_nothing_left();
}

#[test]
fn user_by_uid() {
    let sb = Sandbox::busybox();
    sb.run(["--user", "4242", "--", "id", "-u"])
        .run()
        .assert_success("4242\n");
    sb.assert_nothing_left();
}

#[test]
fn uid_without_entry_gets_gid_0_and_home_slash() {
    let sb = Sandbox::busybox();
    sb.run(["--user", "4242", "--", "sh", "-c", "id -g; echo $HOME"])
        .run()
        .assert_success("0\n/\n");
    sb.assert_nothing_left();
}

#[test]
fn user_and_group() {
    let sb = Sandbox::busybox();
    sb.run(["--user", "app:wheel", "--", "sh", "-c", "id -u; id -g"])
        .run()
        .assert_success("1000\n10\n");
    sb.assert_nothing_left();
}

#[test]
fn default_user_is_root() {
    let sb = Sandbox::busybox();
    sb.run(["--", "sh", "-c", "id -u; echo $HOME; pwd"])
        .run()
        .assert_success("0\n/root\n/\n");
    sb.assert_nothing_left();
}

#[test]
fn unknown_user_exits_125() {
    let sb = Sandbox::busybox();
    sb.run(["--user", "nobody-here", "--", "true"])
        .run()
        .assert_failure(125, "unknown user \"nobody-here\"");
    sb.assert_nothing_left();
}

#[test]
fn ids_above_i32_max_exit_125_naming_the_value() {
    let sb = Sandbox::busybox();
    sb.run(["--user", "4294967295", "--", "true"])
        .run()
        .assert_failure(
            125,
            r#"invalid user "4294967295": uids and gids must be in range 0-2147483647"#,
        );
    sb.run(["--group-add", "2147483648", "--", "true"])
        .run()
        .assert_failure(
            125,
            r#"invalid group "2147483648": uids and gids must be in range 0-2147483647"#,
        );
    sb.run([
        "--user",
        "2147483647:2147483647",
        "--",
        "sh",
        "-c",
        "id -u; id -g",
    ])
    .run()
    .assert_success("2147483647\n2147483647\n");
    sb.assert_nothing_left();
}

#[test]
fn working_dir_is_created() {
    let sb = Sandbox::busybox();
    sb.run(["--workingdir", "/new/dir", "--", "pwd"])
        .run()
        .assert_success("/new/dir\n");
    let dir = sb.rootfs().join("new/dir");
    assert!(dir.is_dir(), "{} is not a directory", dir.display());
    sb.assert_nothing_left_except(&["new", "new/dir"]);
}

#[test]
fn working_dir_is_owned_by_the_user() {
    let sb = Sandbox::busybox();
    sb.run([
        "--user",
        "app",
        "--workingdir",
        "/work",
        "--",
        "sh",
        "-c",
        "pwd; touch f",
    ])
    .run()
    .assert_success("/work\n");
    let tree = ocirun_e2e::TreeSnapshot::take(sb.rootfs());
    assert_eq!(tree.get("work"), Some("dir, mode 755, owner 1000:1000"));
    sb.assert_nothing_left_except(&["work", "work/f"]);
}

#[test]
fn env_flag_sets_a_variable() {
    let sb = Sandbox::busybox();
    sb.run(["--env", "A=1", "--", "sh", "-c", "echo $A"])
        .run()
        .assert_success("1\n");
    sb.assert_nothing_left();
}

#[test]
fn env_flag_with_bare_key_copies_ocirun_env() {
    let sb = Sandbox::busybox();
    sb.run([
        "--env",
        "FROM_HOST",
        "--env",
        "NOT_SET_ON_HOST",
        "--",
        "sh",
        "-c",
        "echo $FROM_HOST ${NOT_SET_ON_HOST-unset}",
    ])
    .env("FROM_HOST", "host value")
    .env_remove("NOT_SET_ON_HOST")
    .run()
    .assert_success("host value unset\n");
    sb.assert_nothing_left();
}

#[test]
fn ocirun_env_is_not_passed_without_flag() {
    let sb = Sandbox::busybox();
    sb.run(["--", "sh", "-c", "echo ${SECRET_OF_HOST-unset}"])
        .env("SECRET_OF_HOST", "x")
        .run()
        .assert_success("unset\n");
    sb.assert_nothing_left();
}

#[test]
fn default_environment() {
    let sb = Sandbox::busybox();
    // `env` in a shell adds PWD and SHLVL; run busybox env directly.
    let out = sb
        .run(["--hostname", "h0", "--", "env"])
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ftp_proxy")
        .env_remove("FTP_PROXY")
        .env_remove("no_proxy")
        .env_remove("NO_PROXY")
        .run();
    out.assert_code(0);
    let mut vars: Vec<&str> = out.stdout_text().lines().collect();
    vars.sort_unstable();
    assert_eq!(
        vars,
        [
            "HOME=/root",
            "HOSTNAME=h0",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    );
    sb.assert_nothing_left();
}

#[test]
fn hostname_flag() {
    let sb = Sandbox::busybox();
    sb.run(["--hostname", "h1", "--", "hostname"])
        .run()
        .assert_success("h1\n");
    sb.assert_nothing_left();
}

#[test]
fn working_dir_through_a_symlink_stays_in_the_rootfs() {
    // /esc -> ../hostside: outside the container that would be a sibling of the rootfs.
    let sb = Sandbox::busybox_with(|rootfs| {
        std::os::unix::fs::symlink("../hostside", rootfs.join("esc")).unwrap();
        std::fs::create_dir(rootfs.join("hostside")).unwrap();
        std::fs::create_dir(rootfs.parent().unwrap().join("hostside")).unwrap();
    });
    sb.run(["--workingdir", "/esc/sub", "--", "pwd"])
        .run()
        .assert_success("/hostside/sub\n");
    assert!(sb.rootfs().join("hostside/sub").is_dir());
    let outside = sb.scratch().join("hostside");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "ocirun created the working directory outside the rootfs, in {}",
        outside.display()
    );
    sb.assert_nothing_left_except(&["hostside/sub"]);
}

#[test]
fn symlinked_passwd_resolves_inside_the_rootfs() {
    // An absolute symlink: followed on the host it would read the host's /etc/passwd.
    let sb = Sandbox::busybox_with(|rootfs| {
        let etc = rootfs.join("etc");
        std::fs::rename(etc.join("passwd"), etc.join("passwd.real")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd.real", etc.join("passwd")).unwrap();
    });
    sb.run(["--user", "app", "--", "sh", "-c", "id -u; echo $HOME"])
        .run()
        .assert_success("1000\n/home/app\n");
    sb.assert_nothing_left();
}
