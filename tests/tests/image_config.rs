//! `--config FILE`: the image's Env, WorkingDir, User and Hostname are defaults that flags
//! override.

use ocirun_e2e::{Sandbox, TreeSnapshot};

const IMAGE_CONFIG: &str =
    r#"{"config":{"Env":["FROM_IMAGE=yes","A=image"],"WorkingDir":"/imgwd","User":"app"}}"#;

/// Writes `text` as the image config of this test and returns its path.
fn write_config(sb: &Sandbox, text: &str) -> String {
    let path = sb.scratch().join("image-config.json");
    std::fs::write(&path, text).expect("write the image config");
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

#[test]
fn image_config_gives_the_defaults() {
    let sb = Sandbox::busybox();
    let config = write_config(&sb, IMAGE_CONFIG);
    sb.run([
        "--config",
        &config,
        "--",
        "sh",
        "-c",
        "echo $FROM_IMAGE $A; pwd; id -u",
    ])
    .run()
    .assert_success("yes image\n/imgwd\n1000\n");
    // The image's working directory was created, owned by the image's user.
    let tree = TreeSnapshot::take(sb.rootfs());
    assert_eq!(tree.get("imgwd"), Some("dir, mode 755, owner 1000:1000"));
    sb.assert_nothing_left_except(&["imgwd"]);
}

#[test]
fn flags_override_the_image_config() {
    let sb = Sandbox::busybox();
    let config = write_config(&sb, IMAGE_CONFIG);
    sb.run([
        "--config",
        &config,
        "--env",
        "A=flag",
        "--workingdir",
        "/flagwd",
        "--user",
        "0",
        "--",
        "sh",
        "-c",
        "echo $FROM_IMAGE $A; pwd; id -u",
    ])
    .run()
    .assert_success("yes flag\n/flagwd\n0\n");
    sb.assert_nothing_left_except(&["flagwd"]);
}

#[test]
fn whole_image_config_json_is_accepted() {
    let sb = Sandbox::busybox();
    let config = write_config(
        &sb,
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"Env":["PATH=/bin:/usr/bin","B=2"],"Hostname":"imghost"}}"#,
    );
    sb.run([
        "--config",
        &config,
        "--",
        "sh",
        "-c",
        "echo $PATH $B; hostname",
    ])
    .run()
    .assert_success("/bin:/usr/bin 2\nimghost\n");
    sb.assert_nothing_left();
}

#[test]
fn bad_image_config_exits_125() {
    let sb = Sandbox::busybox();
    let missing = sb.scratch().join("missing.json");
    sb.run(["--config", missing.to_str().unwrap(), "--", "true"])
        .run()
        .assert_failure(125, "missing.json");
    let config = write_config(&sb, "{not json");
    sb.run(["--config", &config, "--", "true"])
        .run()
        .assert_failure(125, "image-config.json");
    sb.assert_nothing_left();
}

#[test]
fn a_docker_config_with_unset_fields_runs_as_root_in_the_root_directory() {
    let sb = Sandbox::busybox();
    // `docker inspect`'s Config of an image with nothing set: empty strings and nulls.
    let config = write_config(
        &sb,
        r#"{"architecture":"amd64","os":"linux","config":{"Hostname":"","Domainname":"",
            "User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,
            "Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,
            "Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,
            "Labels":null,"StopSignal":""}}"#,
    );
    sb.run(["--config", &config, "--", "sh", "-c", "id -u; id -g; pwd"])
        .run()
        .assert_success("0\n0\n/\n");
    sb.assert_nothing_left();
}
