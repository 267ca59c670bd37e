//! Command lines from the EXAMPLES (and the option texts) of podman-run(1), podman-volume(1),
//! buildah-run(1) and buildah-build(1), run with ocirun as people paste them: the image becomes
//! `--rootfs`, the command becomes one that shows the documented effect (a shell cannot be
//! typed into here), and host paths become directories of the test. Each asserts what the
//! man page says the line does, or, where ocirun refuses a line on purpose, the refusal that
//! docs/ocirun-run.md documents.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use ocirun_e2e::{Output, Sandbox};

type Check = Box<dyn Fn(&Sandbox, &Output)>;
type Setup = Box<dyn Fn(&Sandbox)>;

/// One command line of a man page.
struct Example {
    /// Where it comes from.
    source: &'static str,
    /// As the man page writes it.
    line: &'static str,
    /// ocirun's arguments after `run --rootfs ROOTFS` (or, `global`, after `--runroot` and
    /// `--root`); `{S}` is the test's scratch directory.
    args: Vec<String>,
    global: bool,
    prepare: Option<fn(&Path)>,
    setup: Option<Setup>,
    env: Vec<(String, String)>,
    stdin: Option<&'static str>,
    in_scratch: bool,
    check: Check,
    /// Volumes to remove afterwards.
    volumes: Vec<&'static str>,
}

fn ex(source: &'static str, line: &'static str, args: &[&str]) -> Example {
    Example {
        source,
        line,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        global: false,
        prepare: None,
        setup: None,
        env: Vec::new(),
        stdin: None,
        in_scratch: false,
        check: Box::new(|_, out| {
            out.assert_success("");
        }),
        volumes: Vec::new(),
    }
}

impl Example {
    /// The command's stdout, with a terminal's `\r\n` as `\n`; exit 0 and an empty stderr.
    fn stdout(mut self, want: &'static str) -> Self {
        self.check = Box::new(move |_, out| {
            assert_eq!(out.code, 0, "stderr: {}", out.stderr);
            assert_eq!(out.stdout_text().replace("\r\n", "\n"), want);
            assert_eq!(out.stderr, "", "stderr");
        });
        self
    }

    fn fails(mut self, code: i32, message: &'static str) -> Self {
        self.check = Box::new(move |_, out| {
            out.assert_failure(code, message);
        });
        self
    }

    fn check(mut self, check: impl Fn(&Sandbox, &Output) + 'static) -> Self {
        self.check = Box::new(check);
        self
    }

    fn setup(mut self, setup: impl Fn(&Sandbox) + 'static) -> Self {
        self.setup = Some(Box::new(setup));
        self
    }

    fn prepare(mut self, prepare: fn(&Path)) -> Self {
        self.prepare = Some(prepare);
        self
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn stdin(mut self, bytes: &'static str) -> Self {
        self.stdin = Some(bytes);
        self
    }

    fn in_scratch(mut self) -> Self {
        self.in_scratch = true;
        self
    }

    fn global(mut self) -> Self {
        self.global = true;
        self
    }

    fn volumes(mut self, names: &[&'static str]) -> Self {
        self.volumes = names.to_vec();
        self
    }
}

/// A host directory `{S}/name` holding `existing` ("hi\n").
fn host_dir(sb: &Sandbox, name: &str) {
    let dir = sb.scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("existing"), "hi\n").unwrap();
}

/// Makes the named volumes with a run each.
fn volumes_exist(sb: &Sandbox, names: &[&str]) {
    for name in names {
        sb.run(["-v", &format!("{name}:/v"), "--", "true"])
            .run()
            .assert_success("");
    }
}

/// The masks of /proc/interrupts and /sys/firmware: how many mounts each has in the container.
const MASKS: &str =
    "for p in /proc/interrupts /sys/firmware; do grep -c \" $p \" /proc/self/mountinfo; done; true";

fn examples() -> Vec<Example> {
    const RUN: &str = "podman-run(1) EXAMPLES";
    const OPT: &str = "podman-run(1) OPTIONS";
    const MOUNT: &str = "podman-run(1) --mount";
    const VOL: &str = "podman-volume-*(1) EXAMPLES";
    const BR: &str = "buildah-run(1) EXAMPLE";
    const BRM: &str = "buildah-run(1) --mount";
    const BB: &str = "buildah-build(1) --secret";
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let host_ipc = host_ipc.to_str().unwrap().to_owned();
    let not_the_hosts = host_ipc.clone();
    vec![
        ex(RUN, "podman run --read-only -i -t fedora /bin/bash", &[
            "--read-only", "-i", "-t", "--", "sh", "-c", "touch /x; echo $?; touch /tmp/y && echo tmp",
        ])
        .stdout("touch: /x: Read-only file system\n1\ntmp\n"),
        ex(RUN, "podman run --read-only --read-only-tmpfs=false --tmpfs /run -i -t fedora /bin/bash", &[
            "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/run", "-i", "-t", "--", "sh", "-c",
            "touch /tmp/y; touch /run/y && echo run",
        ])
        .stdout("touch: /tmp/y: Read-only file system\nrun\n"),
        ex(RUN, "podman run -v /dev/log:/dev/log -i -t fedora /bin/bash", &[
            "-v", "{S}/log:/dev/log", "-i", "-t", "--", "sh", "-c", "test -S /dev/log && echo socket",
        ])
        .setup(|sb| {
            let listener = std::os::unix::net::UnixListener::bind(sb.scratch().join("log")).unwrap();
            std::mem::forget(listener);
        })
        .stdout("socket\n"),
        ex(RUN, "podman run -it shm ipcs -m", &["-i", "-t", "--", "readlink", "/proc/self/ns/ipc"])
            .check(move |_, out| {
                out.assert_code(0);
                let ns = out.stdout_text().trim().to_owned();
                assert!(ns.starts_with("ipc:[") && ns != not_the_hosts, "{ns}: not a new namespace");
            }),
        ex(RUN, "podman run -it --ipc=host shm ipcs -m", &[
            "-i", "-t", "--ipc=host", "--", "readlink", "/proc/self/ns/ipc",
        ])
        .check(move |_, out| {
            out.assert_code(0);
            assert_eq!(out.stdout_text().trim(), host_ipc);
        }),
        ex(RUN, "podman run -v /var/db:/data1 -i -t fedora bash", &[
            "-v", "{S}/db:/data1", "-i", "-t", "--", "cat", "/data1/existing",
        ])
        .setup(|sb| host_dir(sb, "db"))
        .stdout("hi\n"),
        ex(RUN, "podman run -v data:/data2 -i -t fedora bash", &[
            "-v", "data:/data2", "-i", "-t", "--", "sh", "-c", "echo kept > /data2/f",
        ])
        .check(|sb, out| {
            out.assert_code(0);
            sb.run(["-v", "data:/data2", "--", "cat", "/data2/f"]).run().assert_success("kept\n");
        })
        .volumes(&["data"]),
        ex(RUN, "podman run -v /var/cache/dnf:/var/cache/dnf:O -ti fedora dnf -y update", &[
            "-v", "{S}/dnf:/var/cache/dnf:O", "-ti", "--", "sh", "-c",
            "echo new > /var/cache/dnf/new; cat /var/cache/dnf/existing /var/cache/dnf/new",
        ])
        .setup(|sb| host_dir(sb, "dnf"))
        .check(|sb, out| {
            assert_eq!(out.stdout_text().replace("\r\n", "\n"), "hi\nnew\n");
            assert!(!sb.scratch().join("dnf/new").exists(), "the overlay wrote to the host");
        }),
        ex(RUN, "podman run -d -e MARIADB_ROOT_PASSWORD=root --user mysql --userns=keep-id -v ~/data:/var/lib/mysql:Z,U mariadb", &[
            "-e", "MARIADB_ROOT_PASSWORD=root", "--user", "mysql", "-v", "{S}/data:/var/lib/mysql:Z,U",
            "--", "sh", "-c", "echo $MARIADB_ROOT_PASSWORD; id -u; stat -c %u /var/lib/mysql/existing",
        ])
        .prepare(|root| {
            let passwd = root.join("etc/passwd");
            let mut text = std::fs::read_to_string(&passwd).unwrap();
            text.push_str("mysql:x:999:999:mysql:/var/lib/mysql:/bin/sh\n");
            std::fs::write(&passwd, text).unwrap();
        })
        .setup(|sb| host_dir(sb, "data"))
        .stdout("root\n999\n999\n"),
        ex(RUN, "podman run --mount type=bind,src=/var/db,target=/data1 busybox sh", &[
            "--mount", "type=bind,src={S}/db,target=/data1", "--", "cat", "/data1/existing",
        ])
        .setup(|sb| host_dir(sb, "db"))
        .stdout("hi\n"),
        ex(RUN, "podman run --mount type=bind,src=/etc/config,dst=/app/config alpine cat /app/config/file.conf", &[
            "--mount", "type=bind,src={S}/config,dst=/app/config", "--", "cat", "/app/config/file.conf",
        ])
        .setup(|sb| {
            std::fs::create_dir(sb.scratch().join("config")).unwrap();
            std::fs::write(sb.scratch().join("config/file.conf"), "key=value\n").unwrap();
        })
        .stdout("key=value\n"),
        ex(RUN, "podman run --mount type=volume,src=mydata,dst=/var/lib/data postgres", &[
            "--mount", "type=volume,src=mydata,dst=/var/lib/data", "--", "sh", "-c", "echo pg > /var/lib/data/x",
        ])
        .check(|sb, out| {
            out.assert_success("");
            let x = sb.root().join("volumes/mydata/_data/x");
            assert_eq!(std::fs::read_to_string(x).unwrap(), "pg\n");
        })
        .volumes(&["mydata"]),
        ex(RUN, "podman run --mount type=tmpfs,dst=/cache,tmpfs-size=64m alpine", &[
            "--mount", "type=tmpfs,dst=/cache,tmpfs-size=64m", "--", "sh", "-c",
            "df -k /cache | tail -1 | awk '{print $1, $2}'",
        ])
        .stdout("tmpfs 65536\n"),
        ex(RUN, "podman run --security-opt label=level:s0:c100,c200 -i -t fedora bash", &[
            "--security-opt", "label=level:s0:c100,c200", "-i", "-t", "--", "true",
        ]),
        ex(RUN, "podman run --security-opt label=disable -i -t fedora bash", &[
            "--security-opt", "label=disable", "-i", "-t", "--", "true",
        ]),
        ex(RUN, "podman run --security-opt mask=/foo/bar:/second/path fedora bash", &[
            "--security-opt", "mask=/foo/bar:/second/path", "--", "sh", "-c", "cat /foo/bar; echo end",
        ])
        .prepare(|root| {
            std::fs::create_dir_all(root.join("foo")).unwrap();
            std::fs::write(root.join("foo/bar"), "hidden\n").unwrap();
        })
        .stdout("end\n"),
        ex(RUN, "podman run --security-opt unmask=ALL fedora bash", &[
            "--security-opt", "unmask=ALL", "--", "sh", "-c", MASKS,
        ])
        .stdout("0\n0\n"),
        ex(RUN, "podman run --security-opt unmask=/proc/* fedora bash", &[
            "--security-opt", "unmask=/proc/*", "--", "sh", "-c", MASKS,
        ])
        .stdout("0\n1\n"),
        ex(RUN, "podman run --security-opt unmask=/foo/bar:/sys/firmware fedora bash", &[
            "--security-opt", "unmask=/foo/bar:/sys/firmware", "--", "sh", "-c", MASKS,
        ])
        .stdout("1\n0\n"),
        ex(RUN, "echo \"asdf\" | podman run --rm -i --entrypoint /bin/cat someimage", &[
            "--rm", "-i", "--", "/bin/cat",
        ])
        .stdin("asdf\n")
        .stdout("asdf\n"),
        ex(RUN, "podman run --sysctl net.ipv4.ip_forward=1 someimage", &[
            "--sysctl", "net.ipv4.ip_forward=1", "--", "true",
        ])
        .fails(125, "invalid --sysctl \"net.ipv4.ip_forward=1\": it needs the container's own network namespace, and the run has --network host"),
        ex(RUN, "podman run --sysctl net.ipv4.ip_forward=1 someimage (with --network none)", &[
            "--sysctl", "net.ipv4.ip_forward=1", "--network", "none", "--", "cat", "/proc/sys/net/ipv4/ip_forward",
        ])
        .stdout("1\n"),
        ex(RUN, "podman run --env 'ENV*' alpine env | grep ENV", &[
            "--env", "ENV*", "--", "sh", "-c", "env | grep ENV",
        ])
        .env("ENV1", "a")
        .stdout("ENV1=a\n"),
        ex(RUN, "podman run --env 'ENV*=b' alpine env | grep ENV", &[
            "--env", "ENV*=b", "--", "/usr/bin/env",
        ])
        .env("ENV1", "a")
        .check(|_, out| {
            out.assert_code(0);
            let envs: Vec<&str> = out.stdout_text().lines().filter(|l| l.contains("ENV")).collect();
            assert_eq!(envs, ["ENV*=b"]);
        }),
        ex(RUN, "podman run -ti --rm -e TZ=EST mytzimage", &[
            "-ti", "--rm", "-e", "TZ=EST", "--", "sh", "-c", "echo $TZ",
        ])
        .stdout("EST\n"),
        ex(OPT, "podman run --ulimit nofile=1024:1024 --rm ubi9 ulimit -n", &[
            "--ulimit", "nofile=1024:1024", "--rm", "--", "sh", "-c", "ulimit -n",
        ])
        .stdout("1024\n"),
        ex(OPT, "podman run -d --tmpfs /tmp:rw,size=787448k,mode=1777 my_image", &[
            "--tmpfs", "/tmp:rw,size=787448k,mode=1777", "--", "sh", "-c",
            "df -k /tmp | tail -1 | awk '{print $2}'; stat -c %a /tmp",
        ])
        .stdout("787448\n1777\n"),
        ex(OPT, "podman run --volume myvolume:/data --tmpfs /data/sub:notmpcopyup my_image", &[
            "--volume", "myvolume:/data", "--tmpfs", "/data/sub:notmpcopyup", "--", "sh", "-c",
            "grep ' /data/sub ' /proc/mounts | cut -d' ' -f3",
        ])
        .stdout("tmpfs\n")
        .volumes(&["myvolume"]),
        ex(OPT, "podman run --security-opt label=disable -v $HOME:/home/user fedora touch /home/user/file", &[
            "--security-opt", "label=disable", "-v", "{S}/home:/home/user", "--", "touch", "/home/user/file",
        ])
        .setup(|sb| host_dir(sb, "home"))
        .check(|sb, out| {
            out.assert_success("");
            assert!(sb.scratch().join("home/file").is_file());
        }),
        ex(MOUNT, "--mount type=bind,source=/path/on/host,destination=/path/in/container", &[
            "--mount", "type=bind,source={S}/host,destination=/path/in/container", "--", "cat",
            "/path/in/container/existing",
        ])
        .setup(|sb| host_dir(sb, "host"))
        .stdout("hi\n"),
        ex(MOUNT, "--mount type=bind,src=/path/on/host,dst=/path/in/container,relabel=shared", &[
            "--mount", "type=bind,src={S}/host,dst=/path/in/container,relabel=shared", "--", "cat",
            "/path/in/container/existing",
        ])
        .setup(|sb| host_dir(sb, "host"))
        .stdout("hi\n"),
        ex(MOUNT, "--mount type=bind,src=/path/on/host,dst=/path/in/container,relabel=shared,U=true", &[
            "--mount", "type=bind,src={S}/host,dst=/path/in/container,relabel=shared,U=true", "--user",
            "1000", "--", "stat", "-c", "%u", "/path/in/container/existing",
        ])
        .setup(|sb| host_dir(sb, "host"))
        .stdout("1000\n"),
        ex(MOUNT, "--mount type=tmpfs,tmpfs-size=512M,destination=/path/in/container", &[
            "--mount", "type=tmpfs,tmpfs-size=512M,destination=/path/in/container", "--", "sh", "-c",
            "df -k /path/in/container | tail -1 | awk '{print $2}'",
        ])
        .stdout("524288\n"),
        ex(MOUNT, "--mount type=volume,destination=/path/in/container", &[
            "--mount", "type=volume,destination=/path/in/container", "--", "true",
        ])
        .fails(125, "a volume mount needs a source, the volume's name (anonymous volumes are not supported)"),
        ex(VOL, "podman volume ls", &["volume", "ls"])
            .global()
            .setup(|sb| volumes_exist(sb, &["myvol1", "myvol2"]))
            .stdout("DRIVER      VOLUME NAME\nlocal       myvol1\nlocal       myvol2\n")
            .volumes(&["myvol1", "myvol2"]),
        ex(VOL, "podman volume ls --format json", &["volume", "ls", "--format", "json"])
            .global()
            .setup(|sb| volumes_exist(sb, &["myvol"]))
            .check(|_, out| {
                out.assert_code(0);
                let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(json[0]["Name"], "myvol");
                assert_eq!(json[0]["Scope"], "local");
            })
            .volumes(&["myvol"]),
        ex(VOL, "podman volume ls --format \"{{.Driver}} {{.Scope}}\"", &[
            "volume", "ls", "--format", "{{.Driver}} {{.Scope}}",
        ])
        .global()
        .setup(|sb| volumes_exist(sb, &["myvol"]))
        .stdout("local local\n")
        .volumes(&["myvol"]),
        ex(VOL, "podman volume inspect myvol", &["volume", "inspect", "myvol"])
            .global()
            .setup(|sb| volumes_exist(sb, &["myvol"]))
            .check(|sb, out| {
                out.assert_code(0);
                let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(json.as_array().unwrap().len(), 1);
                assert_eq!(json[0]["Name"], "myvol");
                assert_eq!(json[0]["Driver"], "local");
                let mountpoint = sb.root().join("volumes/myvol/_data");
                assert_eq!(json[0]["Mountpoint"], mountpoint.to_str().unwrap());
            })
            .volumes(&["myvol"]),
        ex(VOL, "podman volume inspect --format \"{{.Driver}} {{.Scope}}\" myvol", &[
            "volume", "inspect", "--format", "{{.Driver}} {{.Scope}}", "myvol",
        ])
        .global()
        .setup(|sb| volumes_exist(sb, &["myvol"]))
        .stdout("local local\n")
        .volumes(&["myvol"]),
        ex(VOL, "podman volume rm myvol1 myvol2", &["volume", "rm", "myvol1", "myvol2"])
            .global()
            .setup(|sb| volumes_exist(sb, &["myvol1", "myvol2"]))
            .stdout("myvol1\nmyvol2\n"),
        ex(VOL, "podman volume rm --all", &["volume", "rm", "--all"])
            .global()
            .setup(|sb| volumes_exist(sb, &["a", "b"]))
            .stdout("a\nb\n"),
        ex(VOL, "podman volume prune", &["volume", "prune"])
            .global()
            .setup(|sb| volumes_exist(sb, &["unused"]))
            .stdout("unused\n"),
        ex(BR, "buildah run containerID -- ps -auxw", &["--", "ps"]).check(|_, out| {
            out.assert_code(0);
            let first = out.stdout_text().lines().nth(1).unwrap_or_default().to_owned();
            assert!(first.trim_start().starts_with("1 ") && first.ends_with("ps"), "{first:?}");
        }),
        ex(BR, "buildah run --hostname myhost containerID -- ps -auxw", &[
            "--hostname", "myhost", "--", "hostname",
        ])
        .stdout("myhost\n"),
        ex(BR, "buildah run containerID -- sh -c 'echo $PATH'", &["--", "sh", "-c", "echo $PATH"])
            .stdout("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"),
        ex(BR, "buildah run --runtime-flag log-format=json containerID /bin/bash", &[
            "--runtime-flag", "log-format=json", "--", "true",
        ]),
        ex(BR, "buildah run --runtime-flag debug containerID /bin/bash", &[
            "--runtime-flag", "debug", "--", "echo", "ran",
        ])
        .check(|_, out| {
            // What the runtime logs at that level is its own (crun 1.8 logs nothing on
            // success); podman_flags checks that it is shown.
            out.assert_code(0);
            assert_eq!(out.stdout_text(), "ran\n");
        }),
        ex(BR, "buildah run --tty containerID /bin/bash", &[
            "--tty", "--", "sh", "-c", "test -t 0 && test -t 1 && echo tty",
        ])
        .stdout("tty\n"),
        ex(BR, "buildah run --tty=false containerID ls /", &["--tty=false", "--", "ls", "/"])
            .check(|_, out| {
                out.assert_code(0);
                let names: Vec<&str> = out.stdout_text().lines().collect();
                assert!(names.contains(&"bin") && names.contains(&"etc"), "{names:?}");
                assert!(!out.stdout_text().contains('\r'), "a terminal's line ends");
            }),
        ex(BR, "buildah run --volume /path/on/host:/path/in/container:ro,z containerID sh", &[
            "--volume", "{S}/host:/path/in/container:ro,z", "--", "sh", "-c",
            "cat /path/in/container/existing; touch /path/in/container/x 2>&1",
        ])
        .setup(|sb| host_dir(sb, "host"))
        .check(|_, out| {
            assert_eq!(out.code, 1);
            assert_eq!(out.stdout_text(), "hi\ntouch: /path/in/container/x: Read-only file system\n");
        }),
        ex(BR, "buildah run -v /path/on/host:/path/in/container:z,U containerID sh", &[
            "-v", "{S}/host:/path/in/container:z,U", "--user", "1000", "--", "sh", "-c",
            "touch /path/in/container/new && stat -c %u /path/in/container",
        ])
        .setup(|sb| host_dir(sb, "host"))
        .stdout("1000\n"),
        ex(BR, "buildah run --mount type=bind,src=/tmp/on:host,dst=/in:container,ro containerID sh", &[
            "--mount", "type=bind,src={S}/on:host,dst=/in:container,ro", "--", "cat", "/in:container/existing",
        ])
        .setup(|sb| host_dir(sb, "on:host"))
        .stdout("hi\n"),
        ex(BRM, "--mount type=cache,target=/path/in/container", &[
            "--mount", "type=cache,target=/path/in/container", "--", "sh", "-c",
            "echo cached > /path/in/container/f",
        ])
        .check(|sb, out| {
            out.assert_success("");
            let f = sb.root().join("cache/%2Fpath%2Fin%2Fcontainer/f");
            assert_eq!(std::fs::read_to_string(f).unwrap(), "cached\n");
        }),
        ex(BRM, "--mount type=tmpfs,tmpfs-size=512M,destination=/path/in/container", &[
            "--mount", "type=tmpfs,tmpfs-size=512M,destination=/path/in/container", "--", "sh", "-c",
            "df -k /path/in/container | tail -1 | awk '{print $2}'",
        ])
        .stdout("524288\n"),
        ex(BB, "buildah build --secret=id=mysecret,src=.mysecret . + RUN --mount=type=secret,id=mysecret cat /run/secrets/mysecret", &[
            "--secret=id=mysecret,src=.mysecret", "--mount=type=secret,id=mysecret", "--", "cat",
            "/run/secrets/mysecret",
        ])
        .setup(|sb| std::fs::write(sb.scratch().join(".mysecret"), "file secret\n").unwrap())
        .in_scratch()
        .stdout("file secret\n"),
        ex(BB, "RUN --mount=type=secret,id=mysecret,target=/run/secrets/myothersecret cat /run/secrets/myothersecret", &[
            "--secret=id=mysecret,src=.mysecret",
            "--mount=type=secret,id=mysecret,target=/run/secrets/myothersecret", "--", "cat",
            "/run/secrets/myothersecret",
        ])
        .setup(|sb| std::fs::write(sb.scratch().join(".mysecret"), "file secret\n").unwrap())
        .in_scratch()
        .stdout("file secret\n"),
        ex(BB, "buildah build --secret=id=mysecret .", &[
            "--secret=id=mysecret", "--", "cat", "/run/secrets/mysecret",
        ])
        .env("mysecret", "from the variable")
        .stdout("from the variable"),
        ex(BB, "buildah build --secret=id=mysecret,env=MYSECRET .", &[
            "--secret=id=mysecret,env=MYSECRET", "--", "cat", "/run/secrets/mysecret",
        ])
        .env("MYSECRET", "env secret")
        .stdout("env secret"),
        ex(BB, "buildah build --secret=id=mysecret,src=MYSECRET,type=env .", &[
            "--secret=id=mysecret,src=MYSECRET,type=env", "--", "cat", "/run/secrets/mysecret",
        ])
        .env("MYSECRET", "env secret")
        .stdout("env secret"),
        ex(BB, "buildah build --secret=id=mysecret,src=.mysecret,type=file .", &[
            "--secret=id=mysecret,src=.mysecret,type=file", "--", "cat", "/run/secrets/mysecret",
        ])
        .setup(|sb| std::fs::write(sb.scratch().join(".mysecret"), "file secret\n").unwrap())
        .in_scratch()
        .stdout("file secret\n"),
    ]
}

#[test]
fn command_lines_of_the_man_pages_do_what_the_pages_say() {
    let examples = examples();
    assert!(examples.len() >= 40, "only {} examples", examples.len());
    let mut failed = Vec::new();
    for example in &examples {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let sb = match example.prepare {
                Some(prepare) => Sandbox::busybox_with(prepare),
                None => Sandbox::busybox(),
            };
            if let Some(setup) = &example.setup {
                setup(&sb);
            }
            let scratch = sb.scratch().display().to_string();
            let args: Vec<String> = example
                .args
                .iter()
                .map(|a| a.replace("{S}", &scratch))
                .collect();
            let mut ocirun = if example.global {
                sb.global(&args)
            } else {
                sb.run(&args)
            };
            // The `ENV*` examples copy ocirun's ENV variables: only the example's own.
            for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ENV")) {
                ocirun = ocirun.env_remove(key);
            }
            for (key, value) in &example.env {
                ocirun = ocirun.env(key, value);
            }
            if let Some(bytes) = example.stdin {
                ocirun = ocirun.stdin(bytes);
            }
            if example.in_scratch {
                ocirun = ocirun.current_dir(sb.scratch());
            }
            let out = ocirun.run();
            (example.check)(&sb, &out);
            if !example.volumes.is_empty() {
                let mut rm = vec!["volume", "rm"];
                rm.extend(&example.volumes);
                sb.global(&rm).run().assert_code(0);
            }
            let _ = std::fs::remove_dir_all(sb.root().join("cache"));
            sb.assert_nothing_left();
        }));
        if result.is_err() {
            failed.push(format!("{}: {}", example.source, example.line));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} command lines failed (their panics are above):\n{}",
        failed.len(),
        examples.len(),
        failed.join("\n")
    );
}
