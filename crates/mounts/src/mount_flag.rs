//! `--mount type=bind|tmpfs|volume|cache|secret,...` (podman-run(1) `--mount`, and buildah's
//! build-time `cache` and `secret` mounts).
//!
//! The value is a comma-separated list of `key=value` and bare `key` fields; a field that
//! contains a comma is written in double quotes, as in a CSV line (`"source=/a,b"`, with `""`
//! for a quote), as podman reads it. Fields:
//!
//! | field | types | meaning |
//! |---|---|---|
//! | `type=bind\|tmpfs\|volume\|cache\|secret` | | required, first or anywhere |
//! | `source=`, `src=` | bind, volume | the host path, the volume's name (required) |
//! | `destination=`, `dst=`, `target=` | all | the container path (required but for a secret: `/run/secrets/ID`) |
//! | `ro`, `readonly`, `rw` `[=true\|false]` | all | read-only / read-write |
//! | `bind-propagation=P` | bind | `[r]shared`, `[r]slave`, `[r]private`, `[r]unbindable` |
//! | `bind-nonrecursive` | bind | `bind` rather than `rbind` |
//! | `relabel=shared\|private`, `z`, `Z` | bind | SELinux relabel |
//! | `U[=true\|false]`, `chown[=…]` | all | owned by the run's uid:gid |
//! | `suid`, `nosuid`, `dev`, `nodev`, `exec`, `noexec` | all | mount flags |
//! | `tmpfs-size=SIZE` | tmpfs | size (`512m`, `1g`: binary units; plain bytes) |
//! | `tmpfs-mode=OCTAL` | tmpfs | mode of the tmpfs root |
//! | `tmpcopyup`, `notmpcopyup` | tmpfs | copy the rootfs's content at the destination in (default on) |
//! | `consistency=…` | all | accepted and ignored, as podman does |
//! | `id=ID` | cache, secret | the cache (default: the target) or the `--secret` to mount |
//! | `sharing=shared\|locked\|private` | cache | how runs share the cache (default `shared`) |
//! | `uid=`, `gid=`, `mode=OCTAL` | cache, secret | owner and mode of a new cache directory (0, 0, 0755) or of the secret's file |
//! | `required[=BOOL]` | secret | `required=false`: an id no `--secret` declares is left out |

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::user_mount::{clean_destination, parse_bool, tmpfs_options_with_defaults, TmpfsFlag};
use crate::{
    BindOptions, CacheMount, CacheSharing, MountOrigin, MountSpecError, Propagation, Relabel,
    SecretBytes, SecretMount, TmpfsOptions, UserMount, UserMountKind, VolumeMount,
};

/// The `type=` of a `--mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountType {
    /// `bind`
    Bind,
    /// `tmpfs`
    Tmpfs,
    /// `volume`: a named volume.
    Volume,
    /// `cache`: a build-time cache directory.
    Cache,
    /// `secret`: a `--secret`'s bytes.
    Secret,
}

impl MountType {
    /// `bind`, `tmpfs`, `volume`, `cache` or `secret`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Tmpfs => "tmpfs",
            Self::Volume => "volume",
            Self::Cache => "cache",
            Self::Secret => "secret",
        }
    }
}

/// One field of a `--mount` value, other than type, source and destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MountField {
    /// `ro[=bool]`/`readonly[=bool]` (true = read-only); `rw[=bool]` is its negation.
    ReadOnly(bool),
    /// `bind-propagation=P`.
    Propagation(Propagation),
    /// `bind-nonrecursive`.
    NonRecursive,
    /// `relabel=shared|private`, `z`, `Z`.
    Relabel(Relabel),
    /// `U[=bool]`, `chown[=bool]`.
    Chown(bool),
    /// `suid` / `nosuid`.
    Suid(bool),
    /// `dev` / `nodev`.
    Dev(bool),
    /// `exec` / `noexec`.
    Exec(bool),
    /// `tmpfs-size=SIZE`, in bytes.
    TmpfsSize(u64),
    /// `tmpfs-mode=OCTAL`.
    TmpfsMode(u32),
    /// `tmpcopyup` / `notmpcopyup`.
    TmpCopyUp(bool),
    /// `consistency=…` (ignored).
    Consistency(String),
    /// `id=` of a cache or a secret.
    Id(String),
    /// `sharing=` of a cache.
    Sharing(CacheSharing),
    /// `uid=` of a cache or a secret.
    Uid(u32),
    /// `gid=` of a cache or a secret.
    Gid(u32),
    /// `mode=` of a cache or a secret (octal).
    Mode(u32),
    /// `required[=bool]` of a secret.
    Required(bool),
}

impl MountField {
    fn key(&self) -> &'static str {
        match self {
            Self::ReadOnly(_) => "ro",
            Self::Propagation(_) => "bind-propagation",
            Self::NonRecursive => "bind-nonrecursive",
            Self::Relabel(_) => "relabel",
            Self::Chown(_) => "U",
            Self::Suid(_) => "suid",
            Self::Dev(_) => "dev",
            Self::Exec(_) => "exec",
            Self::TmpfsSize(_) => "tmpfs-size",
            Self::TmpfsMode(_) => "tmpfs-mode",
            Self::TmpCopyUp(_) => "tmpcopyup",
            Self::Consistency(_) => "consistency",
            Self::Id(_) => "id",
            Self::Sharing(_) => "sharing",
            Self::Uid(_) => "uid",
            Self::Gid(_) => "gid",
            Self::Mode(_) => "mode",
            Self::Required(_) => "required",
        }
    }

    /// Whether the field is allowed with `typ`.
    fn allowed(&self, typ: MountType) -> bool {
        use MountType::{Bind, Cache, Secret, Tmpfs, Volume};
        match self {
            Self::Propagation(_) | Self::NonRecursive => typ == Bind,
            Self::Relabel(_) => matches!(typ, Bind | Volume),
            Self::TmpfsSize(_) | Self::TmpfsMode(_) | Self::TmpCopyUp(_) => typ == Tmpfs,
            Self::Chown(_) | Self::Suid(_) | Self::Dev(_) | Self::Exec(_) => {
                matches!(typ, Bind | Tmpfs | Volume)
            }
            Self::ReadOnly(_) => typ != Secret,
            Self::Id(_) | Self::Uid(_) | Self::Gid(_) | Self::Mode(_) => {
                matches!(typ, Cache | Secret)
            }
            Self::Sharing(_) => typ == Cache,
            Self::Required(_) => typ == Secret,
            Self::Consistency(_) => true,
        }
    }
}

impl fmt::Display for MountField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadOnly(true) => f.write_str("ro"),
            Self::ReadOnly(false) => f.write_str("rw"),
            Self::Propagation(p) => write!(f, "bind-propagation={p}"),
            Self::NonRecursive => f.write_str("bind-nonrecursive"),
            Self::Relabel(Relabel::Shared) => f.write_str("relabel=shared"),
            Self::Relabel(Relabel::Private) => f.write_str("relabel=private"),
            Self::Chown(b) => write!(f, "U={b}"),
            Self::Suid(b) => f.write_str(if *b { "suid" } else { "nosuid" }),
            Self::Dev(b) => f.write_str(if *b { "dev" } else { "nodev" }),
            Self::Exec(b) => f.write_str(if *b { "exec" } else { "noexec" }),
            Self::TmpfsSize(n) => write!(f, "tmpfs-size={n}"),
            Self::TmpfsMode(m) => write!(f, "tmpfs-mode={m:o}"),
            Self::TmpCopyUp(true) => f.write_str("tmpcopyup"),
            Self::TmpCopyUp(false) => f.write_str("notmpcopyup"),
            Self::Consistency(c) => write!(f, "consistency={c}"),
            Self::Id(id) => write!(f, "id={id}"),
            Self::Sharing(s) => write!(f, "sharing={}", s.as_str()),
            Self::Uid(n) => write!(f, "uid={n}"),
            Self::Gid(n) => write!(f, "gid={n}"),
            Self::Mode(m) => write!(f, "mode={m:o}"),
            Self::Required(b) => write!(f, "required={b}"),
        }
    }
}

/// A parsed `--mount` value. [`fmt::Display`] writes it back in a form that parses to the
/// same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFlag {
    /// `type=`.
    pub typ: MountType,
    /// `source=` (binds only), as given.
    pub source: Option<String>,
    /// `destination=`, absolute and lexically clean.
    pub destination: PathBuf,
    /// The other fields, in the order given.
    pub fields: Vec<MountField>,
}

/// Splits a CSV line: fields separated by commas; a field starting with `"` runs to the
/// closing quote, with `""` for a quote inside.
fn split_csv(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quote".to_owned()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("a quote inside an unquoted field".to_owned()),
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

/// Quotes a field when it needs it.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// A size as podman's `tmpfs-size` takes it (go-units `RAMInBytes`): a decimal number and an
/// optional binary unit `b`, `k`, `m`, `g`, `t` or `p` (any case, optionally followed by `b` or
/// `ib`), in bytes: `64m` is 67108864, `1.5k` is 1536.
fn parse_size(value: &str) -> Result<u64, String> {
    let digits = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let unit = unit.to_ascii_lowercase();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(format!("unknown unit {unit:?} (use b, k, m, g, t or p)")),
    };
    if unit.len() > 1 && !matches!(unit.get(1..), Some("b" | "ib")) {
        return Err(format!("unknown unit {unit:?} (use b, k, m, g, t or p)"));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(format!("{value:?} is not a size"));
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("{value:?} is not a size"))?
    };
    let too_large = || format!("{value:?} is too large");
    let mut bytes = whole.checked_mul(1 << shift).ok_or_else(too_large)?;
    if !fraction.is_empty() {
        let digits: u32 = u32::try_from(fraction.len().min(18)).unwrap_or(18);
        let fraction: u128 = fraction[..digits as usize]
            .parse()
            .map_err(|_| format!("{value:?} is not a size"))?;
        bytes += (fraction << shift) / 10u128.pow(digits);
    }
    u64::try_from(bytes)
        .ok()
        .filter(|b| *b < 1 << 63)
        .ok_or_else(too_large)
}

impl FromStr for MountFlag {
    type Err = MountSpecError;

    fn from_str(spec: &str) -> Result<Self, MountSpecError> {
        let fail = |reason: String| MountSpecError::Mount {
            spec: spec.to_owned(),
            reason,
        };
        let mut typ = None;
        let mut source = None;
        let mut destination = None;
        let mut fields: Vec<MountField> = Vec::new();
        for raw in split_csv(spec).map_err(fail)? {
            let (key, value) = match raw.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (raw.as_str(), None),
            };
            let need = |v: Option<&str>| -> Result<String, MountSpecError> {
                match v {
                    Some(v) if !v.is_empty() => Ok(v.to_owned()),
                    _ => Err(fail(format!("{key} needs a value"))),
                }
            };
            let flag = |v: Option<&str>| parse_bool(v).map_err(|e| fail(format!("{key}: {e}")));
            let field = match key {
                "type" => {
                    let t = match need(value)?.as_str() {
                        "bind" => MountType::Bind,
                        "tmpfs" => MountType::Tmpfs,
                        "volume" => MountType::Volume,
                        "cache" => MountType::Cache,
                        "secret" => MountType::Secret,
                        other => {
                            return Err(fail(format!(
                                "unsupported type {other:?} (use bind, tmpfs, volume, cache or \
                                 secret)"
                            )))
                        }
                    };
                    if typ.replace(t).is_some() {
                        return Err(fail("type given twice".to_owned()));
                    }
                    continue;
                }
                "source" | "src" => {
                    let v = need(value)?;
                    if v.contains('\0') {
                        return Err(fail("source contains a NUL byte".to_owned()));
                    }
                    if source.replace(v).is_some() {
                        return Err(fail("source given twice".to_owned()));
                    }
                    continue;
                }
                "destination" | "dst" | "target" => {
                    let d = clean_destination(&need(value)?).map_err(fail)?;
                    if destination.replace(d).is_some() {
                        return Err(fail("destination given twice".to_owned()));
                    }
                    continue;
                }
                "ro" | "readonly" => MountField::ReadOnly(flag(value)?),
                "rw" => MountField::ReadOnly(!flag(value)?),
                "bind-propagation" => MountField::Propagation(
                    need(value)?
                        .parse()
                        .map_err(|e| fail(format!("bind-propagation: {e}")))?,
                ),
                "bind-nonrecursive" if value.is_none() => MountField::NonRecursive,
                "relabel" => match need(value)?.as_str() {
                    "shared" => MountField::Relabel(Relabel::Shared),
                    "private" => MountField::Relabel(Relabel::Private),
                    other => {
                        return Err(fail(format!(
                            "relabel {other:?}: expected shared or private"
                        )))
                    }
                },
                "z" if value.is_none() => MountField::Relabel(Relabel::Shared),
                "Z" if value.is_none() => MountField::Relabel(Relabel::Private),
                "U" | "chown" => MountField::Chown(flag(value)?),
                "suid" | "nosuid" | "dev" | "nodev" | "exec" | "noexec" if value.is_none() => {
                    let on = !key.starts_with("no");
                    match key.trim_start_matches("no") {
                        "suid" => MountField::Suid(on),
                        "dev" => MountField::Dev(on),
                        _ => MountField::Exec(on),
                    }
                }
                "tmpfs-size" => {
                    let bytes = parse_size(&need(value)?)
                        .map_err(|reason| fail(format!("tmpfs-size: {reason}")))?;
                    MountField::TmpfsSize(bytes)
                }
                "tmpfs-mode" => {
                    let v = need(value)?;
                    let mode = u32::from_str_radix(&v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| fail(format!("tmpfs-mode {v:?} is not an octal mode")))?;
                    MountField::TmpfsMode(mode)
                }
                "tmpcopyup" | "notmpcopyup" if value.is_none() => {
                    MountField::TmpCopyUp(key == "tmpcopyup")
                }
                "consistency" => MountField::Consistency(need(value)?),
                "id" => {
                    let id = need(value)?;
                    if id.contains('\0') {
                        return Err(fail("id contains a NUL byte".to_owned()));
                    }
                    MountField::Id(id)
                }
                "sharing" => MountField::Sharing(need(value)?.parse().map_err(fail)?),
                "uid" | "gid" => {
                    let v = need(value)?;
                    let n = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n <= 0x7fff_ffff && v.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            fail(format!("{key} {v:?} is not a number from 0 to 2147483647"))
                        })?;
                    if key == "uid" {
                        MountField::Uid(n)
                    } else {
                        MountField::Gid(n)
                    }
                }
                "mode" => {
                    let v = need(value)?;
                    let mode = u32::from_str_radix(&v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777 && v.len() <= 5)
                        .ok_or_else(|| fail(format!("mode {v:?} is not an octal mode")))?;
                    MountField::Mode(mode)
                }
                "required" => MountField::Required(flag(value)?),
                "from" => {
                    return Err(fail(
                        "from= is not supported: ocirun mounts no image or stage".to_owned(),
                    ))
                }
                _ => return Err(fail(format!("unknown field {raw:?}"))),
            };
            if let Some(earlier) = fields.iter().find(|f| f.key() == field.key()) {
                return Err(fail(if *earlier == field {
                    format!("{key} given twice")
                } else {
                    format!("conflicting fields \"{earlier}\" and \"{field}\"")
                }));
            }
            fields.push(field);
        }
        let typ = typ.ok_or_else(|| {
            fail("no type: use type=bind, tmpfs, volume, cache or secret".to_owned())
        })?;
        let id = fields.iter().find_map(|f| match f {
            MountField::Id(id) => Some(id.clone()),
            _ => None,
        });
        let destination = match (destination, typ, &id) {
            (Some(d), _, _) => d,
            // buildah: a secret without a target goes to /run/secrets/ID.
            (None, MountType::Secret, Some(id)) => {
                clean_destination(&format!("{}/{id}", crate::SECRETS_DIR)).map_err(fail)?
            }
            (None, _, _) => return Err(fail("no destination".to_owned())),
        };
        match (typ, &source) {
            (MountType::Bind, None) => return Err(fail("a bind mount needs a source".to_owned())),
            (MountType::Volume, None) => {
                return Err(fail(
                    "a volume mount needs a source, the volume's name (anonymous volumes are \
                     not supported)"
                        .to_owned(),
                ))
            }
            (MountType::Tmpfs | MountType::Cache | MountType::Secret, Some(_)) => {
                return Err(fail(format!("a {} mount takes no source", typ.as_str())))
            }
            _ => {}
        }
        if let Some(f) = fields.iter().find(|f| !f.allowed(typ)) {
            return Err(fail(format!(
                "\"{f}\" is not an option of type={}",
                typ.as_str()
            )));
        }
        if typ == MountType::Secret {
            let id = match id {
                Some(id) => id,
                // buildah: the id defaults to the target's file name.
                None => {
                    let name = destination
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    fields.push(MountField::Id(name.clone()));
                    name
                }
            };
            if id.contains('/') || id == "." || id == ".." {
                return Err(fail(format!(
                    "id {id:?} must be a file name (no '/', not '.' or '..')"
                )));
            }
        }
        Ok(Self {
            typ,
            source,
            destination,
            fields,
        })
    }
}

impl fmt::Display for MountFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = vec![format!("type={}", self.typ.as_str())];
        if let Some(src) = &self.source {
            out.push(format!("source={src}"));
        }
        out.push(format!(
            "destination={}",
            self.destination.to_string_lossy()
        ));
        out.extend(self.fields.iter().map(ToString::to_string));
        let fields: Vec<String> = out.iter().map(|f| csv_field(f)).collect();
        f.write_str(&fields.join(","))
    }
}

impl MountFlag {
    /// The mount it asks for; `raw` is the value as the user wrote it (for messages).
    pub fn to_user_mount(&self, raw: &str) -> UserMount {
        let origin = MountOrigin::Mount(raw.to_owned());
        let kind = match self.typ {
            MountType::Bind => {
                let mut bind = BindOptions::new(self.source.clone().unwrap_or_default());
                for field in &self.fields {
                    match field {
                        MountField::ReadOnly(ro) => bind.read_only = *ro,
                        MountField::Propagation(p) => bind.propagation = *p,
                        MountField::NonRecursive => bind.recursive = false,
                        MountField::Relabel(r) => bind.relabel = Some(*r),
                        MountField::Chown(c) => bind.chown = *c,
                        MountField::Suid(b) => bind.suid = Some(*b),
                        MountField::Dev(b) => bind.dev = Some(*b),
                        MountField::Exec(b) => bind.exec = Some(*b),
                        _ => {}
                    }
                }
                UserMountKind::Bind(bind)
            }
            MountType::Tmpfs => {
                let mut given = Vec::new();
                let mut chown = false;
                for field in &self.fields {
                    match field {
                        MountField::ReadOnly(ro) => {
                            given.push(if *ro { "ro" } else { "rw" }.to_owned())
                        }
                        MountField::Chown(c) => chown = *c,
                        MountField::Suid(_)
                        | MountField::Dev(_)
                        | MountField::Exec(_)
                        | MountField::TmpCopyUp(_) => given.push(field.to_string()),
                        MountField::TmpfsSize(n) => given.push(format!("size={n}")),
                        MountField::TmpfsMode(m) => given.push(format!("mode={m:o}")),
                        _ => {}
                    }
                }
                UserMountKind::Tmpfs(TmpfsOptions {
                    options: tmpfs_options_with_defaults(&given, TmpfsFlag::Mount),
                    chown,
                })
            }
            MountType::Volume => {
                let mut bind = BindOptions::new(PathBuf::new());
                for field in &self.fields {
                    match field {
                        MountField::ReadOnly(ro) => bind.read_only = *ro,
                        MountField::Relabel(r) => bind.relabel = Some(*r),
                        MountField::Chown(c) => bind.chown = *c,
                        MountField::Suid(b) => bind.suid = Some(*b),
                        MountField::Dev(b) => bind.dev = Some(*b),
                        MountField::Exec(b) => bind.exec = Some(*b),
                        _ => {}
                    }
                }
                UserMountKind::Volume(VolumeMount {
                    name: self.source.clone().unwrap_or_default(),
                    dir: PathBuf::new(),
                    copy: true,
                    create: true,
                    bind,
                })
            }
            MountType::Cache => {
                let mut cache = CacheMount {
                    id: self.destination.to_string_lossy().into_owned(),
                    dir: PathBuf::new(),
                    sharing: CacheSharing::Shared,
                    read_only: false,
                    uid: 0,
                    gid: 0,
                    mode: 0o755,
                };
                for field in &self.fields {
                    match field {
                        MountField::Id(id) => cache.id.clone_from(id),
                        MountField::Sharing(s) => cache.sharing = *s,
                        MountField::ReadOnly(ro) => cache.read_only = *ro,
                        MountField::Uid(n) => cache.uid = *n,
                        MountField::Gid(n) => cache.gid = *n,
                        MountField::Mode(m) => cache.mode = *m,
                        _ => {}
                    }
                }
                UserMountKind::Cache(cache)
            }
            MountType::Secret => {
                let mut secret = SecretMount {
                    id: String::new(),
                    mode: None,
                    uid: None,
                    gid: None,
                    required: None,
                    bytes: SecretBytes::default(),
                };
                for field in &self.fields {
                    match field {
                        MountField::Id(id) => secret.id.clone_from(id),
                        MountField::Uid(n) => secret.uid = Some(*n),
                        MountField::Gid(n) => secret.gid = Some(*n),
                        MountField::Mode(m) => secret.mode = Some(*m),
                        MountField::Required(r) => secret.required = Some(*r),
                        _ => {}
                    }
                }
                UserMountKind::Secret(secret)
            }
        };
        UserMount {
            origin,
            destination: self.destination.clone(),
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    fn err(spec: &str) -> String {
        spec.parse::<MountFlag>().unwrap_err().to_string()
    }

    #[test]
    fn bind_with_fields() {
        let m: MountFlag =
            "type=bind,src=/h,dst=/d,ro=true,bind-propagation=rslave,relabel=private,U"
                .parse()
                .unwrap();
        assert_eq!(m.typ, MountType::Bind);
        assert_eq!(m.source.as_deref(), Some("/h"));
        assert_eq!(m.destination, Path::new("/d"));
        assert_eq!(
            m.to_string(),
            "type=bind,source=/h,destination=/d,ro,bind-propagation=rslave,relabel=private,U=true"
        );
        let UserMountKind::Bind(b) = m.to_user_mount("x").kind else {
            panic!("bind")
        };
        assert!(b.read_only && b.chown && b.recursive);
        assert_eq!(b.propagation, Propagation::RSlave);
        assert_eq!(b.relabel, Some(Relabel::Private));
    }

    #[test]
    fn a_tmpfs_mount_gets_no_noexec_default() {
        let m: MountFlag = "type=tmpfs,dst=/t".parse().unwrap();
        let UserMountKind::Tmpfs(t) = m.to_user_mount("x").kind else {
            panic!("tmpfs")
        };
        assert_eq!(
            t.options,
            ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]
        );
        let m: MountFlag = "type=tmpfs,dst=/t,noexec".parse().unwrap();
        let UserMountKind::Tmpfs(t) = m.to_user_mount("x").kind else {
            panic!("tmpfs")
        };
        assert_eq!(
            t.options,
            ["noexec", "rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]
        );
    }

    #[test]
    fn tmpfs_with_size_and_mode() {
        let m: MountFlag = "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770,exec"
            .parse()
            .unwrap();
        let UserMountKind::Tmpfs(t) = m.to_user_mount("x").kind else {
            panic!("tmpfs")
        };
        assert_eq!(
            t.options,
            [
                "size=1048576",
                "mode=1770",
                "exec",
                "rw",
                "rprivate",
                "nosuid",
                "nodev",
                "tmpcopyup"
            ]
        );
    }

    #[test]
    fn volumes_caches_and_secrets() {
        let m: MountFlag = "type=volume,source=data,target=/var/lib/data,ro,U"
            .parse()
            .unwrap();
        let UserMountKind::Volume(v) = m.to_user_mount("raw").kind else {
            panic!("a volume")
        };
        assert_eq!(v.name, "data");
        assert!(v.bind.read_only && v.bind.chown && v.copy && v.create);
        let m: MountFlag = "type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1000"
            .parse()
            .unwrap();
        let UserMountKind::Cache(c) = m.to_user_mount("raw").kind else {
            panic!("a cache")
        };
        assert_eq!(
            (c.id.as_str(), c.sharing, c.mode, c.uid, c.gid, c.read_only),
            ("/root/.cache", CacheSharing::Locked, 0o700, 1000, 0, false)
        );
        let m: MountFlag = "type=cache,id=go,target=/go".parse().unwrap();
        let UserMountKind::Cache(c) = m.to_user_mount("raw").kind else {
            panic!("a cache")
        };
        assert_eq!(c.id, "go");
        // A secret goes to /run/secrets/ID, and without an id takes the target's name.
        let m: MountFlag = "type=secret,id=tok".parse().unwrap();
        assert_eq!(m.destination, Path::new("/run/secrets/tok"));
        let m: MountFlag = "type=secret,target=/etc/key,mode=0440".parse().unwrap();
        let mount = m.to_user_mount("raw");
        let UserMountKind::Secret(s) = mount.kind else {
            panic!("a secret")
        };
        assert_eq!((s.id.as_str(), s.mode), ("key", Some(0o440)));
        assert_eq!(
            m.to_string(),
            "type=secret,destination=/etc/key,mode=440,id=key"
        );
    }

    #[test]
    fn quoted_fields() {
        let m: MountFlag = r#"type=bind,"source=/a,b",destination=/d"#.parse().unwrap();
        assert_eq!(m.source.as_deref(), Some("/a,b"));
        assert_eq!(m.to_string(), r#"type=bind,"source=/a,b",destination=/d"#);
    }

    #[test]
    fn the_bad_ones_name_the_value() {
        assert_eq!(
            err("type=image,src=fedora,dst=/d"),
            "invalid --mount \"type=image,src=fedora,dst=/d\": unsupported type \"image\" (use \
             bind, tmpfs, volume, cache or secret)"
        );
        assert_eq!(
            err("type=volume,dst=/d"),
            "invalid --mount \"type=volume,dst=/d\": a volume mount needs a source, the volume's \
             name (anonymous volumes are not supported)"
        );
        assert_eq!(
            err("type=cache,src=/x,target=/c"),
            r#"invalid --mount "type=cache,src=/x,target=/c": a cache mount takes no source"#
        );
        assert_eq!(
            err("type=cache,target=/c,sharing=sometimes"),
            "invalid --mount \"type=cache,target=/c,sharing=sometimes\": sharing \"sometimes\": \
             expected shared, locked or private"
        );
        assert_eq!(
            err("type=cache,target=/c,from=builder"),
            "invalid --mount \"type=cache,target=/c,from=builder\": from= is not supported: \
             ocirun mounts no image or stage"
        );
        assert_eq!(
            err("type=cache,target=/c,uid=x"),
            r#"invalid --mount "type=cache,target=/c,uid=x": uid "x" is not a number from 0 to 2147483647"#
        );
        assert_eq!(
            err("type=secret"),
            r#"invalid --mount "type=secret": no destination"#
        );
        assert_eq!(
            err("type=secret,id=a/b"),
            r#"invalid --mount "type=secret,id=a/b": id "a/b" must be a file name (no '/', not '.' or '..')"#
        );
        assert_eq!(
            err("type=secret,id=a,ro"),
            r#"invalid --mount "type=secret,id=a,ro": "ro" is not an option of type=secret"#
        );
        assert_eq!(
            err("type=volume,src=v,dst=/d,sharing=locked"),
            r#"invalid --mount "type=volume,src=v,dst=/d,sharing=locked": "sharing=locked" is not an option of type=volume"#
        );
        assert_eq!(
            err("type=bind,dst=/d"),
            r#"invalid --mount "type=bind,dst=/d": a bind mount needs a source"#
        );
        assert_eq!(
            err("src=/h,dst=/d"),
            r#"invalid --mount "src=/h,dst=/d": no type: use type=bind, tmpfs, volume, cache or secret"#
        );
        assert_eq!(
            err("type=bind,src=/h,dst=d"),
            r#"invalid --mount "type=bind,src=/h,dst=d": destination "d" is not an absolute path"#
        );
        assert_eq!(
            err("type=tmpfs,dst=/t,tmpfs-size=1x"),
            r#"invalid --mount "type=tmpfs,dst=/t,tmpfs-size=1x": tmpfs-size: unknown unit "x" (use b, k, m, g, t or p)"#
        );
        assert_eq!(
            err("type=tmpfs,dst=/t,relabel=shared"),
            r#"invalid --mount "type=tmpfs,dst=/t,relabel=shared": "relabel=shared" is not an option of type=tmpfs"#
        );
        assert_eq!(
            err("type=bind,src=/h,dst=/d,ro,rw"),
            r#"invalid --mount "type=bind,src=/h,dst=/d,ro,rw": conflicting fields "ro" and "rw""#
        );
        assert_eq!(
            err("type=bind,src=/h,dst=/d,bogus"),
            r#"invalid --mount "type=bind,src=/h,dst=/d,bogus": unknown field "bogus""#
        );
        assert_eq!(
            err(r#"type=bind,"src=/h"#),
            r#"invalid --mount "type=bind,\"src=/h": unterminated quote"#
        );
    }

    fn field(typ: MountType) -> impl Strategy<Value = MountField> {
        let common = prop_oneof![
            any::<bool>().prop_map(MountField::ReadOnly),
            any::<bool>().prop_map(MountField::Chown),
            any::<bool>().prop_map(MountField::Suid),
            any::<bool>().prop_map(MountField::Dev),
            any::<bool>().prop_map(MountField::Exec),
            "[a-z]{1,8}".prop_map(MountField::Consistency),
        ];
        let owner = prop_oneof![
            (0u32..0x7fff_ffff).prop_map(MountField::Uid),
            (0u32..0x7fff_ffff).prop_map(MountField::Gid),
            (0u32..0o7777).prop_map(MountField::Mode),
        ];
        match typ {
            MountType::Bind => prop_oneof![
                common,
                proptest::sample::select(Propagation::ALL.to_vec())
                    .prop_map(MountField::Propagation),
                Just(MountField::NonRecursive),
                prop_oneof![Just(Relabel::Shared), Just(Relabel::Private)]
                    .prop_map(MountField::Relabel),
            ]
            .boxed(),
            MountType::Tmpfs => prop_oneof![
                common,
                (0u64..1 << 40).prop_map(MountField::TmpfsSize),
                (0u32..0o7777).prop_map(MountField::TmpfsMode),
                any::<bool>().prop_map(MountField::TmpCopyUp),
            ]
            .boxed(),
            MountType::Volume => prop_oneof![
                common,
                prop_oneof![Just(Relabel::Shared), Just(Relabel::Private)]
                    .prop_map(MountField::Relabel),
            ]
            .boxed(),
            MountType::Cache => prop_oneof![
                owner,
                any::<bool>().prop_map(MountField::ReadOnly),
                "[a-z/ ,\"]{1,8}".prop_map(MountField::Id),
                prop_oneof![
                    Just(CacheSharing::Shared),
                    Just(CacheSharing::Locked),
                    Just(CacheSharing::Private)
                ]
                .prop_map(MountField::Sharing),
            ]
            .boxed(),
            MountType::Secret => {
                prop_oneof![owner, any::<bool>().prop_map(MountField::Required)].boxed()
            }
        }
    }

    fn mount_flag() -> impl Strategy<Value = MountFlag> {
        prop_oneof![
            Just(MountType::Bind),
            Just(MountType::Tmpfs),
            Just(MountType::Volume),
            Just(MountType::Cache),
            Just(MountType::Secret)
        ]
        .prop_flat_map(|typ| {
            (
                "[^\0\"]{1,12}|[a-z\",]{1,12}",
                "/[a-z,\" =]{1,12}",
                proptest::collection::vec(field(typ), 0..6),
                "[a-z][a-z.]{0,6}",
            )
                .prop_map(move |(src, dst, fs, id)| {
                    let mut fields: Vec<MountField> = Vec::new();
                    if typ == MountType::Secret {
                        fields.push(MountField::Id(id));
                    }
                    for f in fs {
                        if !fields.iter().any(|e| e.key() == f.key()) {
                            fields.push(f);
                        }
                    }
                    MountFlag {
                        typ,
                        source: matches!(typ, MountType::Bind | MountType::Volume).then_some(src),
                        destination: clean_destination(&dst).unwrap_or_else(|_| "/x".into()),
                        fields,
                    }
                })
        })
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = s.parse::<MountFlag>();
        }

        #[test]
        fn accepted_values_round_trip(m in mount_flag()) {
            let text = m.to_string();
            let again: MountFlag = text
                .parse()
                .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(again, m);
        }

        #[test]
        fn a_bind_without_source_is_rejected(dst in "/[a-z]{1,8}") {
            let spec = format!("type=bind,dst={dst}");
            prop_assert!(err(&spec).ends_with("a bind mount needs a source"));
        }
    }
}
