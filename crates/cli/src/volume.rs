//! `ocirun volume ls|inspect|rm|prune`: the named volumes under `ROOT/volumes`, as podman's
//! `volume` commands show and remove them (docs/ocirun-volume.md).

use anyhow::{bail, Result};
use ocirun_mounts::{VolumeInfo, VolumeRemoveError, VolumeStore};
use ocirun_runtime_driver::VolumeName;

use crate::flags::VolumeCommand;
use crate::rootless::Invocation;

/// `ocirun volume rm`'s exit code when a volume did not exist (podman's).
const EXIT_NO_SUCH_VOLUME: i32 = 1;
/// `ocirun volume rm`'s exit code when a volume is in use (podman's).
const EXIT_VOLUME_IN_USE: i32 = 2;

/// How volumes are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    /// `DRIVER` and `VOLUME NAME` columns.
    Table,
    /// A JSON array of objects.
    Json,
    /// A template, one line per volume.
    Template(Vec<Piece>),
}

/// A part of a `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A field a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Driver,
    Mountpoint,
    CreatedAt,
    Scope,
}

impl Field {
    const ALL: [(&'static str, Field); 5] = [
        (".Name", Field::Name),
        (".Driver", Field::Driver),
        (".Mountpoint", Field::Mountpoint),
        (".CreatedAt", Field::CreatedAt),
        (".Scope", Field::Scope),
    ];

    fn value(self, v: &VolumeInfo) -> String {
        match self {
            Field::Name => v.name.clone(),
            Field::Driver | Field::Scope => "local".to_owned(),
            Field::Mountpoint => v.mountpoint.display().to_string(),
            Field::CreatedAt => v.created_at.clone(),
        }
    }
}

impl Format {
    /// `json`, `table`, or a template of `{{.Name}}`, `{{.Driver}}`, `{{.Mountpoint}}`,
    /// `{{.CreatedAt}}`, `{{.Scope}}` and text (`\n` and `\t` as escapes).
    fn parse(flag: &str, raw: &str) -> Result<Self> {
        match raw {
            "json" => return Ok(Self::Json),
            "table" => return Ok(Self::Table),
            _ => {}
        }
        let bad = |reason: String| anyhow::anyhow!("invalid {flag} {raw:?}: {reason}");
        let mut pieces = Vec::new();
        let mut rest = raw;
        while let Some(start) = rest.find("{{") {
            pieces.push(Piece::Text(unescape(&rest[..start])));
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| bad("a {{ without }}".to_owned()))?;
            let name = after[..end].trim();
            let field = Field::ALL
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    bad(format!(
                        "unknown field {name:?}: use json, table, or a template of {{{{.Name}}}}, \
                         {{{{.Driver}}}}, {{{{.Mountpoint}}}}, {{{{.CreatedAt}}}}, {{{{.Scope}}}}"
                    ))
                })?;
            pieces.push(Piece::Field(field));
            rest = &after[end + 2..];
        }
        pieces.push(Piece::Text(unescape(rest)));
        if !pieces.iter().any(|p| matches!(p, Piece::Field(_))) {
            return Err(bad(
                "use json, table, or a template of {{.Name}}, {{.Driver}}, {{.Mountpoint}}, \
                 {{.CreatedAt}}, {{.Scope}}"
                    .to_owned(),
            ));
        }
        Ok(Self::Template(pieces))
    }

    /// The text to print for `volumes`.
    fn render(&self, volumes: &[VolumeInfo]) -> Result<String> {
        Ok(match self {
            Self::Table => {
                let mut out = format!("{:<12}{}\n", "DRIVER", "VOLUME NAME");
                for v in volumes {
                    out.push_str(&format!("{:<12}{}\n", "local", v.name));
                }
                out
            }
            Self::Json => {
                let list: Vec<serde_json::Value> = volumes.iter().map(json).collect();
                let mut out = serde_json::to_string_pretty(&list)?;
                out.push('\n');
                out
            }
            Self::Template(pieces) => {
                let mut out = String::new();
                for v in volumes {
                    for piece in pieces {
                        match piece {
                            Piece::Text(t) => out.push_str(t),
                            Piece::Field(f) => out.push_str(&f.value(v)),
                        }
                    }
                    out.push('\n');
                }
                out
            }
        })
    }
}

/// `\n` and `\t` as podman's templates take them.
fn unescape(text: &str) -> String {
    text.replace("\\n", "\n").replace("\\t", "\t")
}

/// A volume as podman's `volume inspect` shows it.
fn json(v: &VolumeInfo) -> serde_json::Value {
    serde_json::json!({
        "Name": v.name,
        "Driver": "local",
        "Mountpoint": v.mountpoint,
        "CreatedAt": v.created_at,
        "Labels": {},
        "Scope": "local",
        "Options": {},
    })
}

/// A volume name given on the command line, checked.
fn name(raw: &str) -> Result<VolumeName> {
    Ok(raw.parse::<VolumeName>()?)
}

/// Runs `ocirun volume SUBCOMMAND`; returns the exit code. Without root, in the user namespace
/// ocirun runs containers in, whose ids own the volumes' files.
pub(crate) fn run(mut ctx: Invocation, command: &VolumeCommand) -> Result<i32> {
    ctx.enter_user_namespace()?;
    let store = VolumeStore::new(ctx.state.volumes());
    match command {
        VolumeCommand::Ls(args) => {
            let format = match &args.format {
                Some(raw) => Format::parse("--format", raw)?,
                None => Format::Table,
            };
            let volumes = store.list()?;
            if args.quiet {
                for v in &volumes {
                    println!("{}", v.name);
                }
            } else {
                print!("{}", format.render(&volumes)?);
            }
            Ok(0)
        }
        VolumeCommand::Inspect(args) => {
            let format = match &args.format {
                Some(raw) => Format::parse("--format", raw)?,
                None => Format::Json,
            };
            if args.all && !args.names.is_empty() {
                bail!("--all and volume names cannot be used together");
            }
            let volumes = if args.all {
                store.list()?
            } else {
                if args.names.is_empty() {
                    bail!("inspect needs volume names, or --all");
                }
                let mut found = Vec::new();
                for raw in &args.names {
                    let name = name(raw)?;
                    match store.get(name.as_str()) {
                        Some(v) => found.push(v),
                        None => bail!("no volume with name {raw:?} found"),
                    }
                }
                found
            };
            print!("{}", format.render(&volumes)?);
            Ok(0)
        }
        VolumeCommand::Rm(args) => {
            if args.all && !args.names.is_empty() {
                bail!("--all and volume names cannot be used together");
            }
            if !args.all && args.names.is_empty() {
                bail!("rm needs volume names, or --all");
            }
            let names: Vec<String> = if args.all {
                store.list()?.into_iter().map(|v| v.name).collect()
            } else {
                let mut checked = Vec::new();
                for raw in &args.names {
                    checked.push(name(raw)?.as_str().to_owned());
                }
                checked
            };
            let mut code = 0;
            for name in &names {
                match store.remove(name) {
                    Ok(()) => println!("{name}"),
                    Err(e @ VolumeRemoveError::NotFound(_)) => {
                        eprintln!("ocirun: {e}");
                        if code == 0 {
                            code = EXIT_NO_SUCH_VOLUME;
                        }
                    }
                    Err(e @ VolumeRemoveError::InUse(_)) => {
                        eprintln!("ocirun: {e}");
                        code = EXIT_VOLUME_IN_USE;
                    }
                    Err(VolumeRemoveError::Host(e)) => return Err(e.into()),
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(_) => {
            for name in store.prune()? {
                println!("{name}");
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_info(name: &str) -> VolumeInfo {
        // VolumeInfo is non-exhaustive: made through the store, as ocirun sees it.
        let dir = tempfile_dir();
        let store = VolumeStore::new(&dir);
        std::fs::create_dir_all(dir.join(name).join("_data")).unwrap();
        std::fs::write(dir.join(name).join("lock"), "").unwrap();
        std::fs::write(dir.join(name).join("created"), "2024-01-02T03:04:05Z\n").unwrap();
        let info = store.get(name).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        info
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ocirun-volume-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn formats() {
        let v = test_info("data");
        assert_eq!(
            Format::Table.render(std::slice::from_ref(&v)).unwrap(),
            "DRIVER      VOLUME NAME\nlocal       data\n"
        );
        let t = Format::parse("--format", "{{.Driver}} {{ .Scope }}\\t{{.Name}}").unwrap();
        assert_eq!(
            t.render(std::slice::from_ref(&v)).unwrap(),
            "local local\tdata\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&Format::Json.render(&[v]).unwrap()).unwrap();
        assert_eq!(json[0]["Name"], "data");
        assert_eq!(json[0]["Driver"], "local");
        assert_eq!(json[0]["CreatedAt"], "2024-01-02T03:04:05Z");
        assert!(json[0]["Mountpoint"]
            .as_str()
            .unwrap()
            .ends_with("/data/_data"));
    }

    #[test]
    fn bad_formats_name_the_value() {
        let err = |raw: &str| Format::parse("--format", raw).unwrap_err().to_string();
        assert_eq!(
            err("{{.Labels}}"),
            "invalid --format \"{{.Labels}}\": unknown field \".Labels\": use json, table, or a \
             template of {{.Name}}, {{.Driver}}, {{.Mountpoint}}, {{.CreatedAt}}, {{.Scope}}"
        );
        assert_eq!(
            err("yaml"),
            "invalid --format \"yaml\": use json, table, or a template of {{.Name}}, \
             {{.Driver}}, {{.Mountpoint}}, {{.CreatedAt}}, {{.Scope}}"
        );
        assert!(err("{{.Name").contains("a {{ without }}"));
    }
}
