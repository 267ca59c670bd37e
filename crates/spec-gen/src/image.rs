//! The parts of an OCI image configuration that decide how a command runs.
//!
//! The format is the image-spec's `config.json` ("Image JSON Description"): either the whole
//! document, whose `config` member holds the execution parameters, or that `config` object alone.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::SpecError;

/// The execution parameters of an OCI image (image-spec `config` object).
///
/// Field names follow the image-spec (`Env`, `User`, `WorkingDir`, ...). Unknown members are
/// ignored, as the image-spec asks of consumers. A `null` member, and an empty string where a
/// string is expected (`"User": ""`, `"WorkingDir": ""`, `"Hostname": ""`, `"StopSignal": ""`,
/// as Docker writes a config whose fields were never set), is "not set"; so are an empty entry
/// of `Env` and an empty key of `Volumes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ImageConfig {
    /// `KEY=VALUE` entries, merged before the run's own `--env` entries.
    #[serde(default, deserialize_with = "non_empty_strings")]
    pub env: Vec<String>,
    /// The user to run as when `--user` is not given, in any form `--user` accepts.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub user: Option<String>,
    /// The working directory when `--workingdir` is not given; absolute.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub working_dir: Option<String>,
    /// The image's entrypoint (used only with `--use-entrypoint`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub entrypoint: Vec<String>,
    /// The image's default arguments (used only with `--use-entrypoint`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub cmd: Vec<String>,
    /// Paths that the image declares as volumes (keys of the image-spec `Volumes` object).
    #[serde(default, deserialize_with = "volume_keys")]
    pub volumes: Vec<String>,
    /// Image labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// The signal that stops the container, e.g. `SIGTERM` (a name with or without `SIG`, or a
    /// number): the first signal `--timeout` sends.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub stop_signal: Option<String>,
    /// The hostname when `--hostname` is not given (a Docker extension of the format).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub hostname: Option<String>,
}

impl ImageConfig {
    /// Parses an image configuration from JSON bytes: the whole image-spec document (its
    /// `config` member is used; a document without one gives the empty configuration) or the
    /// `config` object alone.
    ///
    /// # Errors
    /// [`SpecError::InvalidImageConfig`] when the bytes are not JSON or a member has the wrong
    /// type.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SpecError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(SpecError::InvalidImageConfig)?;
        let is_document = value.get("config").is_some()
            || value.get("rootfs").is_some()
            || value.get("architecture").is_some();
        let config = if is_document {
            value
                .get("config")
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        } else {
            value
        };
        if config.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(config).map_err(SpecError::InvalidImageConfig)
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A string member that is `null` or empty is not set.
fn empty_as_none<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(deserializer)?.filter(|s| !s.is_empty()))
}

/// A list of strings whose `null` is empty and whose empty entries are left out.
fn non_empty_strings<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let list: Vec<String> = null_as_default(deserializer)?;
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

fn volume_keys<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let map: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(deserializer)?;
    Ok(map
        .unwrap_or_default()
        .into_keys()
        .filter(|k| !k.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_document_uses_its_config_member() {
        let doc =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"Env":["A=1"],"User":"app","WorkingDir":"/w","Volumes":{"/data":{}},
            "Labels":{"k":"v"},"StopSignal":"SIGINT"}}"#;
        let c = ImageConfig::from_json(doc).unwrap();
        assert_eq!(c.env, ["A=1"]);
        assert_eq!(c.user.as_deref(), Some("app"));
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.volumes, ["/data"]);
        assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn config_object_alone_and_nulls() {
        let c = ImageConfig::from_json(br#"{"Env":null,"Cmd":["sh"],"Hostname":"h"}"#).unwrap();
        assert!(c.env.is_empty());
        assert_eq!(c.cmd, ["sh"]);
        assert_eq!(c.hostname.as_deref(), Some("h"));
        assert_eq!(
            ImageConfig::from_json(br#"{"architecture":"amd64"}"#).unwrap(),
            ImageConfig::default()
        );
    }

    #[test]
    fn a_docker_config_with_unset_fields_sets_nothing() {
        // The Config of `docker inspect` for an image built FROM scratch with no settings.
        let doc = br#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,
            "AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,
            "StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,
            "WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null,
            "StopSignal":"","ExposedPorts":null}"#;
        assert_eq!(ImageConfig::from_json(doc).unwrap(), ImageConfig::default());
        let wrapped = br#"{"architecture":"amd64","os":"linux","config":{"User":"",
            "WorkingDir":"","Hostname":"","StopSignal":"","Env":["","PATH=/bin"],
            "Volumes":{"":{},"/data":null}}}"#;
        let c = ImageConfig::from_json(wrapped).unwrap();
        assert_eq!(
            (
                c.user,
                c.working_dir,
                c.hostname,
                c.stop_signal,
                c.env,
                c.volumes
            ),
            (
                None,
                None,
                None,
                None,
                vec!["PATH=/bin".to_owned()],
                vec!["/data".to_owned()]
            )
        );
    }

    #[test]
    fn bad_json_is_an_error() {
        let err = ImageConfig::from_json(br#"{"Env":"A=1"}"#).unwrap_err();
        assert_eq!(err.to_string(), "invalid image configuration");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.starts_with("invalid type: string"), "{source}");
        assert!(ImageConfig::from_json(b"not json").is_err());
    }
}
