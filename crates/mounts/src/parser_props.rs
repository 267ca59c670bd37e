//! Every value parser of the crate on arbitrary input: none panics, whatever the bytes.

use proptest::prelude::*;

use crate::secrets::parse_mounts_conf;
use crate::*;

/// Any string, or one of the characters that the grammars are made of.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9/:,=.\\\\\" \\n-]{0,40}",
        "(type=(bind|tmpfs),)?((src|dst|target|tmpfs-size|tmpfs-mode|bind-propagation|ro|U)=?[a-z0-9/\\\\.-]{0,8},?){0,5}",
        "/[a-z]{0,4}(:/[a-z]{0,4})?(:[a-zA-Z,]{0,12})?",
    ]
}

proptest! {
    #[test]
    fn value_types_never_panic(s in text()) {
        let _ = s.parse::<VolumeSpec>().map(|v| v.to_user_mount(&s));
        let _ = s.parse::<MountFlag>().map(|m| m.to_user_mount(&s));
        let _ = s.parse::<TmpfsSpec>().map(|t| t.to_user_mount(&s));
        let _ = s.parse::<HostEntry>();
        let _ = s.parse::<VolumeOption>();
        let _ = s.parse::<Propagation>();
        let _ = image_volume_path(&s);
        let mut dns = DnsOptions::default();
        let _ = dns.add_server(&s);
        let _ = dns.add_search(&s);
        let _ = dns.add_option(&s);
        let _ = dns.check();
    }

    #[test]
    fn mounts_files_never_panic(lines in proptest::collection::vec(text(), 0..6)) {
        let _ = parse_mounts_conf("f", &lines.join("\n"));
    }
}
