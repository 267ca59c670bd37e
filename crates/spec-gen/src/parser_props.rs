//! Every value parser of the crate on arbitrary input: none panics, whatever the bytes.

use proptest::prelude::*;
use serde_json::Value;

use crate::*;

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An image configuration object whose members are the known ones, with any values.
fn image_config() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("User"),
        Just("WorkingDir"),
        Just("Hostname"),
        Just("Env"),
        Just("Entrypoint"),
        Just("Cmd"),
        Just("Volumes"),
        Just("Labels"),
        Just("StopSignal"),
        Just("config"),
        Just("rootfs"),
    ];
    proptest::collection::btree_map(key, json(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

/// Any string, or one of the characters that the grammars are made of.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-zA-Z:=,./_*+ -]{0,30}",
        "-?[0-9]{0,25}(\\.[0-9]{0,12})?[bkmgtpBKMGTP]?",
    ]
}

proptest! {
    #[test]
    fn value_types_never_panic(s in text()) {
        let _ = s.parse::<Size>();
        let _ = s.parse::<Cpus>();
        let _ = s.parse::<CpuList>();
        let _ = s.parse::<Ulimit>();
        let _ = s.parse::<CapabilityName>();
        let _ = s.parse::<SecurityOpt>();
        let _ = s.parse::<NamespaceMode>();
        let _ = s.parse::<NetworkMode>();
        let _ = s.parse::<DeviceRequest>();
        let _ = s.parse::<MemorySwap>();
        let _ = s.parse::<UserNsMode>();
        let _ = s.parse::<IdMapping>();
        let _ = s.parse::<NativeArch>();
        let _ = UserDb::default().resolve(Some(&s));
        let _ = UserDb::default().group_id(&s);
    }

    #[test]
    fn env_files_never_panic(lines in proptest::collection::vec(text(), 0..6)) {
        let _ = parse_env_file("f", &lines.join("\n"));
    }

    #[test]
    fn image_configs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ImageConfig::from_json(&bytes);
    }

    #[test]
    fn image_configs_of_any_json_never_panic(doc in image_config(), nested in any::<bool>()) {
        let doc = if nested { serde_json::json!({ "config": doc }) } else { doc };
        let _ = ImageConfig::from_json(doc.to_string().as_bytes());
    }
}
