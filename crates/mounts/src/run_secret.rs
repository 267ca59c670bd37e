//! Secrets of one run: `--secret id=ID,src=FILE...` declares one, `--mount type=secret,id=ID`
//! mounts it (buildah's build-time secrets, as `buildah build --secret` and `RUN
//! --mount=type=secret` take them).
//!
//! A secret's bytes are read once, before anything is created, from a regular file (opened
//! non-blocking, so that a FIFO cannot hang the run; at most [`MAX_SECRET_SIZE`] bytes) or
//! from a variable of the caller's environment; [`prepare`](crate::prepare) writes them into
//! a file of the bundle directory (mode 0400 unless `mode=` says, owned by `uid=`/`gid=`,
//! default 0), which is bind-mounted read-only, `nosuid,nodev,noexec`, at `/run/secrets/ID`
//! (or the target). They are never part of the spec, never written into the rootfs (only the
//! empty mount target is), and go with the bundle when the run ends.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::user_mount::clean_destination;
use crate::{MountOrigin, MountSpecError, UserMount, UserMountKind};

/// The largest secret accepted, in bytes: 512 KiB (Docker's and BuildKit's bound is 500 KB).
pub const MAX_SECRET_SIZE: u64 = 512 * 1024;

/// Where a secret is mounted when no target is given: `/run/secrets/ID`.
pub const SECRETS_DIR: &str = "/run/secrets";

/// A secret's bytes. Its `Debug` shows only their number, so that no log shows them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Takes `bytes` as a secret.
    ///
    /// # Errors
    /// The reason, when there are more than [`MAX_SECRET_SIZE`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() as u64 > MAX_SECRET_SIZE {
            return Err(format!("larger than {} KiB", MAX_SECRET_SIZE / 1024));
        }
        Ok(Self(bytes))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// Reads the secret file `path` (symlinks followed): opened non-blocking, it must be a
/// regular file of at most [`MAX_SECRET_SIZE`] bytes.
///
/// # Errors
/// The reason, for the caller's message: the open error, `not a regular file`, or `larger
/// than 512 KiB`.
pub fn read_secret_file(path: &Path) -> Result<SecretBytes, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            _ => e.to_string(),
        })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(format!("{what}, not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    SecretBytes::new(bytes)
}

/// `O_NONBLOCK | O_NOCTTY`: opening a FIFO or a terminal must neither block nor take it over.
fn libc_flags() -> i32 {
    (nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY).bits()
}

/// Where a `--secret`'s bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the host (absolute, or relative to the caller's working directory).
    File(PathBuf),
    /// A variable of the caller's environment.
    Env(String),
}

/// A parsed `--secret id=ID[,src=FILE|env=VAR][,type=file|env][,target=PATH][,mode=OCTAL]
/// [,uid=UID][,gid=GID]`. Without `src=` and `env=`, the source is the variable ID when the
/// caller's environment has it, else the file ID (buildah's rule; [`SecretFlag::source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFlag {
    /// `id=`: a file name (no `/`, not `.` or `..`).
    pub id: String,
    /// `src=`/`source=` or `env=`, as given.
    pub src: Option<String>,
    /// `type=file|env`, or `env=` (env); `None`: as the caller's environment decides.
    pub env: Option<bool>,
    /// `target=`/`dst=`/`destination=`: where it is mounted (default `/run/secrets/ID`).
    pub target: Option<PathBuf>,
    /// `mode=` (default 0400).
    pub mode: Option<u32>,
    /// `uid=` (default 0).
    pub uid: Option<u32>,
    /// `gid=` (default 0).
    pub gid: Option<u32>,
}

/// Checks a secret id: it names a file in `/run/secrets`.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty id".to_owned());
    }
    if id.contains(['/', '\0']) || id == "." || id == ".." {
        return Err(format!(
            "id {id:?} must be a file name (no '/', not '.' or '..')"
        ));
    }
    Ok(())
}

/// An octal file mode of at most `0777` (a secret needs no set-id bits).
fn parse_mode(key: &str, value: &str) -> Result<u32, String> {
    u32::from_str_radix(value, 8)
        .ok()
        .filter(|m| *m <= 0o777 && !value.is_empty() && value.len() <= 4)
        .ok_or_else(|| format!("{key} {value:?} is not an octal mode up to 0777"))
}

/// A uid or gid from 0 to 2147483647 (runc's range).
fn parse_id(key: &str, value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= 0x7fff_ffff && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("{key} {value:?} is not a number from 0 to 2147483647"))
}

impl FromStr for SecretFlag {
    type Err = MountSpecError;

    fn from_str(spec: &str) -> Result<Self, MountSpecError> {
        let fail = |reason: String| MountSpecError::Secret {
            spec: spec.to_owned(),
            reason,
        };
        let mut flag = Self {
            id: String::new(),
            src: None,
            env: None,
            target: None,
            mode: None,
            uid: None,
            gid: None,
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut env_given = false;
        for field in spec.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| fail(format!("field {field:?} is not KEY=VALUE")))?;
            let canonical = match key {
                "src" | "source" | "env" => "source",
                "target" | "dst" | "destination" => "target",
                other => other,
            };
            if seen.contains(&canonical) {
                return Err(fail(format!("{key} given twice")));
            }
            seen.push(canonical);
            if value.is_empty() && key != "id" {
                return Err(fail(format!("{key} needs a value")));
            }
            match key {
                "id" => {
                    check_id(value).map_err(fail)?;
                    flag.id = value.to_owned();
                }
                "src" | "source" => flag.src = Some(value.to_owned()),
                "env" => {
                    flag.src = Some(value.to_owned());
                    env_given = true;
                }
                "type" => match value {
                    "file" => flag.env = Some(false),
                    "env" => flag.env = Some(true),
                    other => return Err(fail(format!("type {other:?}: expected file or env"))),
                },
                "target" | "dst" | "destination" => {
                    flag.target = Some(clean_destination(value).map_err(fail)?);
                }
                "mode" => flag.mode = Some(parse_mode(key, value).map_err(fail)?),
                "uid" => flag.uid = Some(parse_id(key, value).map_err(fail)?),
                "gid" => flag.gid = Some(parse_id(key, value).map_err(fail)?),
                other => return Err(fail(format!("unknown field {other:?}"))),
            }
        }
        if flag.id.is_empty() {
            return Err(fail("no id: expected id=ID".to_owned()));
        }
        if env_given && flag.env.is_none() {
            flag.env = Some(true);
        }
        if env_given && flag.env == Some(false) {
            return Err(fail("env= and type=file contradict each other".to_owned()));
        }
        Ok(flag)
    }
}

impl SecretFlag {
    /// Where the bytes come from: `env=VAR` or `type=env` the variable (`src=` or the id),
    /// `src=FILE` or `type=file` the file (`src=` or the id); with neither, the variable ID
    /// when `has_env(ID)`, else the file ID.
    pub fn source(&self, has_env: impl Fn(&str) -> bool) -> SecretSource {
        let name = self.src.clone().unwrap_or_else(|| self.id.clone());
        let env = self
            .env
            .unwrap_or_else(|| self.src.is_none() && has_env(&self.id));
        if env {
            SecretSource::Env(name)
        } else {
            SecretSource::File(PathBuf::from(name))
        }
    }

    /// Where it is mounted when no `--mount type=secret` says: the target, else
    /// `/run/secrets/ID`.
    pub fn default_target(&self) -> PathBuf {
        self.target
            .clone()
            .unwrap_or_else(|| Path::new(SECRETS_DIR).join(&self.id))
    }
}

/// A secret mounted into the container: its bytes, the mode and owner of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    /// The secret's id.
    pub id: String,
    /// The file's mode (`mode=`; 0400 when neither the mount nor the `--secret` says).
    pub mode: Option<u32>,
    /// The file's owner (`uid=`; 0 when neither says).
    pub uid: Option<u32>,
    /// The file's group (`gid=`; 0 when neither says).
    pub gid: Option<u32>,
    /// `required=` of a `--mount type=secret`: `Some(false)` lets an id that no `--secret`
    /// declares be left out (with a warning); otherwise it is an error.
    pub required: Option<bool>,
    /// The bytes ([`compose_secrets`] fills them in).
    pub bytes: SecretBytes,
}

/// The secret mounts of a run: each `--mount type=secret` among `mounts` gets the bytes, mode
/// and owner of the `--secret` with its id (its own `mode=`, `uid=`, `gid=` win), and each
/// `--secret` that no such mount names is mounted at its own target (default
/// `/run/secrets/ID`), after the user's other mounts. `declared` pairs each `--secret` as
/// written with its parsed value and its bytes (read by the caller: [`read_secret_file`], or
/// the environment).
///
/// # Errors
/// [`MountSpecError`] naming the `--mount` whose id no `--secret` declares (unless it says
/// `required=false`: then it is left out, with a warning), or a `--secret` id given twice.
pub fn compose_secrets(
    mounts: &mut Vec<UserMount>,
    declared: &[(String, SecretFlag, SecretBytes)],
) -> Result<(), MountSpecError> {
    for (i, (raw, flag, _)) in declared.iter().enumerate() {
        if declared[..i].iter().any(|(_, f, _)| f.id == flag.id) {
            return Err(MountSpecError::Secret {
                spec: raw.clone(),
                reason: format!("id {:?} given twice", flag.id),
            });
        }
    }
    let mut used = vec![false; declared.len()];
    let mut kept = Vec::with_capacity(mounts.len());
    for mut m in std::mem::take(mounts) {
        if let UserMountKind::Secret(secret) = &mut m.kind {
            let Some(index) = declared.iter().position(|(_, f, _)| f.id == secret.id) else {
                if secret.required == Some(false) {
                    tracing::warn!(id = %secret.id, "no --secret with this id: the mount is left out");
                    continue;
                }
                return Err(m
                    .origin
                    .error(format!("no --secret declares the id {:?}", secret.id)));
            };
            used[index] = true;
            let (_, flag, bytes) = &declared[index];
            secret.mode = Some(secret.mode.or(flag.mode).unwrap_or(0o400));
            secret.uid = Some(secret.uid.or(flag.uid).unwrap_or(0));
            secret.gid = Some(secret.gid.or(flag.gid).unwrap_or(0));
            secret.bytes = bytes.clone();
        }
        kept.push(m);
    }
    for ((raw, flag, bytes), used) in declared.iter().zip(used) {
        if used {
            continue;
        }
        kept.push(UserMount {
            origin: MountOrigin::Secret(raw.clone()),
            destination: flag.default_target(),
            kind: UserMountKind::Secret(SecretMount {
                id: flag.id.clone(),
                mode: Some(flag.mode.unwrap_or(0o400)),
                uid: Some(flag.uid.unwrap_or(0)),
                gid: Some(flag.gid.unwrap_or(0)),
                required: None,
                bytes: bytes.clone(),
            }),
        });
    }
    *mounts = kept;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(spec: &str) -> String {
        spec.parse::<SecretFlag>().unwrap_err().to_string()
    }

    #[test]
    fn flags_and_their_sources() {
        let f: SecretFlag = "id=token,src=./t.txt,target=/etc/token,mode=0440,uid=1000,gid=10"
            .parse()
            .unwrap();
        assert_eq!(f.id, "token");
        assert_eq!(f.source(|_| true), SecretSource::File("./t.txt".into()));
        assert_eq!(f.default_target(), Path::new("/etc/token"));
        assert_eq!((f.mode, f.uid, f.gid), (Some(0o440), Some(1000), Some(10)));
        let f: SecretFlag = "id=k,env=API_KEY".parse().unwrap();
        assert_eq!(f.source(|_| false), SecretSource::Env("API_KEY".into()));
        assert_eq!(f.default_target(), Path::new("/run/secrets/k"));
        // buildah: without a source, the variable ID if there is one, else the file ID.
        let f: SecretFlag = "id=k".parse().unwrap();
        assert_eq!(f.source(|v| v == "k"), SecretSource::Env("k".into()));
        assert_eq!(f.source(|_| false), SecretSource::File("k".into()));
        let f: SecretFlag = "id=k,type=env".parse().unwrap();
        assert_eq!(f.source(|_| false), SecretSource::Env("k".into()));
    }

    #[test]
    fn bad_flags_name_the_value() {
        assert_eq!(
            err("src=/f"),
            "invalid --secret \"src=/f\": no id: expected id=ID"
        );
        assert_eq!(
            err("id=a/b,src=/f"),
            "invalid --secret \"id=a/b,src=/f\": id \"a/b\" must be a file name (no '/', not \
             '.' or '..')"
        );
        assert_eq!(
            err("id=a,color=red"),
            "invalid --secret \"id=a,color=red\": unknown field \"color\""
        );
        assert_eq!(
            err("id=a,mode=999"),
            "invalid --secret \"id=a,mode=999\": mode \"999\" is not an octal mode up to 0777"
        );
        assert_eq!(
            err("id=a,uid=-1"),
            "invalid --secret \"id=a,uid=-1\": uid \"-1\" is not a number from 0 to 2147483647"
        );
        assert_eq!(
            err("id=a,src=/x,env=Y"),
            "invalid --secret \"id=a,src=/x,env=Y\": env given twice"
        );
        assert_eq!(
            err("id=a,type=ssh"),
            "invalid --secret \"id=a,type=ssh\": type \"ssh\": expected file or env"
        );
        assert_eq!(
            err("id=a,target=rel"),
            "invalid --secret \"id=a,target=rel\": destination \"rel\" is not an absolute path"
        );
        assert!(err("id=a,src").contains("is not KEY=VALUE"));
        assert!(err("id=a,src=").contains("src needs a value"));
        assert!(err("id=..").contains("must be a file name"));
        assert_eq!(
            err("id=a,env=V,type=file"),
            "invalid --secret \"id=a,env=V,type=file\": env= and type=file contradict each other"
        );
    }

    #[test]
    fn files_must_be_regular_and_small() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "s3cret").unwrap();
        assert_eq!(read_secret_file(&ok).unwrap().as_bytes(), b"s3cret");
        assert_eq!(
            format!("{:?}", read_secret_file(&ok).unwrap()),
            "SecretBytes(6 bytes)"
        );
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            read_secret_file(&fifo).unwrap_err(),
            "a FIFO, not a regular file"
        );
        assert_eq!(
            read_secret_file(dir.path()).unwrap_err(),
            "a directory, not a regular file"
        );
        assert_eq!(
            read_secret_file(Path::new("/dev/null")).unwrap_err(),
            "a device, not a regular file"
        );
        assert_eq!(
            read_secret_file(&dir.path().join("missing")).unwrap_err(),
            "no such file"
        );
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; (MAX_SECRET_SIZE + 1) as usize]).unwrap();
        assert_eq!(read_secret_file(&big).unwrap_err(), "larger than 512 KiB");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_SIZE as usize]).unwrap();
        assert_eq!(
            read_secret_file(&big).unwrap().as_bytes().len() as u64,
            MAX_SECRET_SIZE
        );
    }

    #[test]
    fn mounts_take_the_declared_bytes_and_the_rest_go_to_run_secrets() {
        let declared = vec![
            (
                "id=a,src=/a,mode=0440".to_owned(),
                "id=a,src=/a,mode=0440".parse::<SecretFlag>().unwrap(),
                SecretBytes::new(b"A".to_vec()).unwrap(),
            ),
            (
                "id=b,src=/b".to_owned(),
                "id=b,src=/b".parse::<SecretFlag>().unwrap(),
                SecretBytes::new(b"B".to_vec()).unwrap(),
            ),
        ];
        let raw = "type=secret,id=a,target=/etc/a,uid=7";
        let mut mounts = vec![raw.parse::<crate::MountFlag>().unwrap().to_user_mount(raw)];
        compose_secrets(&mut mounts, &declared).unwrap();
        type Shown = (String, String, Option<u32>, Option<u32>, Vec<u8>);
        let got: Vec<Shown> = mounts
            .iter()
            .map(|m| {
                let UserMountKind::Secret(s) = &m.kind else {
                    panic!("a secret")
                };
                (
                    m.destination.display().to_string(),
                    s.id.clone(),
                    s.mode,
                    s.uid,
                    s.bytes.as_bytes().to_vec(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/etc/a".into(),
                    "a".into(),
                    Some(0o440),
                    Some(7),
                    b"A".to_vec()
                ),
                (
                    "/run/secrets/b".into(),
                    "b".into(),
                    Some(0o400),
                    Some(0),
                    b"B".to_vec()
                ),
            ]
        );

        let raw = "type=secret,id=nope";
        let mut mounts = vec![raw.parse::<crate::MountFlag>().unwrap().to_user_mount(raw)];
        assert_eq!(
            compose_secrets(&mut mounts, &declared)
                .unwrap_err()
                .to_string(),
            "invalid --mount \"type=secret,id=nope\": no --secret declares the id \"nope\""
        );
        let raw = "type=secret,id=nope,required=false";
        let mut mounts = vec![raw.parse::<crate::MountFlag>().unwrap().to_user_mount(raw)];
        compose_secrets(&mut mounts, &[]).unwrap();
        assert!(mounts.is_empty());
        let twice = vec![declared[0].clone(), declared[0].clone()];
        assert_eq!(
            compose_secrets(&mut Vec::new(), &twice)
                .unwrap_err()
                .to_string(),
            "invalid --secret \"id=a,src=/a,mode=0440\": id \"a\" given twice"
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,50}") {
            let _ = s.parse::<SecretFlag>();
        }
    }
}
