//! The files a run reads (image config, env files, seccomp profiles, mounts files, secrets,
//! the rootfs's user database) must be regular files of at most 16 MiB: a FIFO, a device node
//! or a huge sparse file is refused at once with exit 125 naming it, and leaves nothing; an
//! unreadable user database is done without where it can be.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocirun_e2e::{Output, Sandbox};

/// How long a refused input may take ocirun: it must not wait for a FIFO writer, nor read a
/// device.
const QUICK: Duration = Duration::from_secs(5);

fn fifo(path: &Path) -> PathBuf {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    path.to_path_buf()
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

#[track_caller]
fn assert_refused(out: &Output, message: &str) {
    out.assert_code(125);
    assert_eq!(out.stdout_text(), "");
    assert_eq!(out.stderr, format!("ocirun: {message}\n"));
    assert!(out.elapsed < QUICK, "took {:?}", out.elapsed);
}

/// Each input, as a FIFO, as /dev/zero and as a sparse file over 16 MiB: the flag and what
/// ocirun says of the file.
fn each_bad_file(sb: &Sandbox) -> Vec<(PathBuf, &'static str)> {
    let big = sb.scratch().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((16 << 20) + 1)
        .unwrap();
    vec![
        (
            fifo(&sb.scratch().join("fifo")),
            "not a regular file (a FIFO)",
        ),
        (
            PathBuf::from("/dev/zero"),
            "not a regular file (a character device)",
        ),
        (big, "larger than 16 MiB"),
    ]
}

#[test]
fn a_fifo_a_device_or_a_huge_file_as_input_is_refused_at_once() {
    let sb = Sandbox::busybox();
    for (file, why) in each_bad_file(&sb) {
        let f = text(&file);
        for (args, message) in [
            (
                vec!["--config".to_owned(), f.clone()],
                format!("--config {f:?}: {why}"),
            ),
            (
                vec!["--env-file".to_owned(), f.clone()],
                format!("--env-file {f:?}: {why}"),
            ),
            (
                vec!["--security-opt".to_owned(), format!("seccomp={f}")],
                format!("cannot read seccomp profile {f:?}: {why}"),
            ),
            (
                vec!["--mounts-file".to_owned(), f.clone()],
                format!("read mounts file {f:?}: {why}"),
            ),
        ] {
            for sub in ["run", "spec"] {
                let mut all = args.clone();
                all.extend(["--".to_owned(), "true".to_owned()]);
                let out = sb.ocirun(sub, &all).timeout(QUICK * 2).run();
                assert_refused(&out, &message);
            }
        }
    }
    sb.assert_nothing_left();
}

#[test]
fn a_secret_that_is_not_a_regular_file_is_refused_and_special_entries_are_left_out() {
    let sb = Sandbox::busybox();
    let conf = sb.scratch().join("mounts.conf");
    for (file, why) in each_bad_file(&sb) {
        std::fs::write(&conf, format!("{}:/run/s\n", text(&file))).unwrap();
        let out = sb
            .run(["--mounts-file", &text(&conf), "--", "true"])
            .timeout(QUICK * 2)
            .run();
        assert_refused(
            &out,
            &format!("copy secret {:?} to \"/run/s\": {why}", text(&file)),
        );
    }

    // In a secret directory, a FIFO and a device are left out, with a warning, unread.
    let dir = sb.scratch().join("secrets");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("key"), "K\n").unwrap();
    fifo(&dir.join("fifo"));
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).unwrap();
    std::fs::write(&conf, format!("{}:/run/s\n", text(&dir))).unwrap();
    let out = sb
        .run(["--mounts-file", &text(&conf), "--", "ls", "/run/s"])
        .timeout(QUICK * 2)
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout_text(), "key\n");
    for name in ["fifo", "zero"] {
        let warning = format!(
            "WARN not a file or directory: left out of the secret path={}\n",
            dir.join(name).display()
        );
        assert!(out.stderr.contains(&warning), "{:?}", out.stderr);
    }
    assert!(out.elapsed < QUICK, "took {:?}", out.elapsed);
    sb.assert_nothing_left();
}

/// Makes a file at the path it is given.
type Maker = fn(&Path);

/// `/etc/passwd` or `/etc/group` of the rootfs replaced by `make`.
fn rootfs_with(file: &'static str, make: Maker) -> Sandbox {
    Sandbox::busybox_with(move |r| {
        let path = r.join("etc").join(file);
        std::fs::remove_file(&path).unwrap();
        make(&path);
    })
}

const IDS: &str = "grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo $HOME";

#[test]
fn an_unreadable_passwd_is_done_without_for_numeric_users() {
    // How each is made, why it cannot be read, and whether the container sees an empty file
    // over it (runc reads /etc/passwd itself, and would wait for the FIFO or fail on the
    // large file) or, for the symlink loop, none (runc cannot open it either).
    let makers: [(Maker, &str, bool); 3] = [
        (
            |p| {
                fifo(p);
            },
            "not a regular file (a FIFO)",
            true,
        ),
        (
            |p| std::os::unix::fs::symlink("passwd", p).unwrap(),
            "Too many levels of symbolic links (os error 40)",
            false,
        ),
        (
            |p| {
                std::fs::File::create(p)
                    .unwrap()
                    .set_len((16 << 20) + 1)
                    .unwrap()
            },
            "larger than 16 MiB",
            true,
        ),
    ];
    for (make, why, covered) in makers {
        let sb = rootfs_with("passwd", make);
        let warning = format!(
            "WARN cannot read /etc/passwd of rootfs {:?}: {why}: a numeric user gets gid 0 (or \
             the given gid), no other supplementary group and HOME=/{}\n",
            sb.rootfs(),
            if covered {
                "; the container sees it empty"
            } else {
                ""
            }
        );
        let seen = "; (wc -c < /etc/passwd) 2>/dev/null || echo unreadable";
        let out = sb
            .run(["--", "sh", "-c", &format!("{IDS}{seen}")])
            .timeout(QUICK * 2)
            .run();
        out.assert_code(0);
        assert_eq!(
            out.stdout_text(),
            format!(
                "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 \n/\n{}\n",
                if covered { "0" } else { "unreadable" }
            )
        );
        assert!(out.stderr.ends_with(&warning), "{:?}", out.stderr);
        let out = sb.run(["--user", "1000:1000", "--", "sh", "-c", IDS]).run();
        out.assert_code(0);
        assert_eq!(
            out.stdout_text(),
            "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t1000 \n/\n"
        );
        for sub in ["run", "spec"] {
            let out = sb.ocirun(sub, ["--user", "app", "--", "true"]).run();
            out.assert_code(125);
            assert!(
                out.stderr.ends_with(&format!(
                    "ocirun: unknown user \"app\": the rootfs's /etc/passwd cannot be read: \
                     {why}\n"
                )),
                "{:?}",
                out.stderr
            );
        }
        sb.assert_nothing_left();
    }
}

#[test]
fn a_directory_as_passwd_is_refused_naming_it() {
    let sb = rootfs_with("passwd", |p| std::fs::create_dir(p).unwrap());
    for sub in ["run", "spec"] {
        let out = sb.ocirun(sub, ["--", "true"]).run();
        out.assert_failure(
            125,
            &format!(
                "ocirun: rootfs {:?}: /etc/passwd is a directory, which the runtime cannot read \
                 to set up the user\n",
                sb.rootfs()
            ),
        );
    }
    sb.assert_nothing_left();
}

#[test]
fn an_unreadable_group_file_fails_only_group_names() {
    let sb = rootfs_with("group", |p| {
        let dev = nix::sys::stat::makedev(1, 5);
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            dev,
        )
        .unwrap();
    });
    let out = sb
        .run(["--user", "app", "--", "sh", "-c", IDS])
        .timeout(QUICK * 2)
        .run();
    out.assert_code(0);
    assert_eq!(
        out.stdout_text(),
        "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t1000 \n/home/app\n"
    );
    let warning = format!(
        "WARN cannot read /etc/group of rootfs {:?}: not a regular file (a character device): \
         no supplementary group beyond the user's gid; the container sees it empty\n",
        sb.rootfs()
    );
    assert!(out.stderr.ends_with(&warning), "{:?}", out.stderr);
    let out = sb.run(["--group-add", "app", "--", "true"]).run();
    out.assert_code(125);
    assert!(
        out.stderr.ends_with(
            "ocirun: unknown group \"app\": the rootfs's /etc/group cannot be read: not a \
             regular file (a character device)\n"
        ),
        "{:?}",
        out.stderr
    );
    sb.assert_nothing_left();
}

#[test]
fn a_rootfs_whose_path_is_not_utf8_is_refused_up_front() {
    use std::os::unix::ffi::OsStrExt;
    let sb = Sandbox::busybox();
    let odd = sb
        .scratch()
        .join(std::ffi::OsStr::from_bytes(b"rootfs-\xff"));
    std::fs::rename(sb.rootfs(), &odd).unwrap();
    let outs: Vec<Output> = ["run", "spec"]
        .into_iter()
        .map(|subcommand| {
            ocirun_e2e::Ocirun::new([
                "--runroot".as_ref(),
                sb.runroot().as_os_str(),
                "--root".as_ref(),
                sb.root().as_os_str(),
                subcommand.as_ref(),
                "--rootfs".as_ref(),
                odd.as_os_str(),
                "true".as_ref(),
            ])
            .run()
        })
        .collect();
    std::fs::rename(&odd, sb.rootfs()).unwrap();
    let shown = format!("{odd:?}");
    for out in &outs {
        assert_refused(
            out,
            &format!(
                "rootfs {shown}: its path {shown} is not valid UTF-8, which the runtime's \
                 config.json cannot hold"
            ),
        );
    }
    let records: Vec<_> = std::fs::read_dir(sb.runroot().join("records"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(records.is_empty(), "records left: {records:?}");
    sb.assert_nothing_left();
}
