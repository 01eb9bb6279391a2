//! The `hearth` binary as an operator meets it: init, serve on the embedded default, env
//! overrides, the two endpoints, and bad configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Server, hearth, serve};

use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, PublicKeySet, verify_json};

/// `hearth init` for `example.org` in `dir` (data in `dir/data`); the config file's path.
fn init(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("hearth.toml");
    let status = hearth()
        .args(["init", "--server-name", "example.org", "--data"])
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success());
    config
}

async fn check_endpoints(server: &Server, server_name: &str) {
    let client = reqwest::Client::new();
    let versions: serde_json::Value = client
        .get(format!("{}/_matrix/client/versions", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        versions["versions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "v1.1")
    );

    let keys: ruma::CanonicalJsonObject = client
        .get(format!("{}/_matrix/key/v2/server", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let json = serde_json::to_value(&keys).unwrap();
    assert_eq!(json["server_name"], server_name);
    let verify_keys = json["verify_keys"].as_object().unwrap();
    assert_eq!(verify_keys.len(), 1);
    let (key_id, key) = verify_keys.iter().next().unwrap();
    let mut set = PublicKeySet::new();
    set.insert(
        key_id.clone(),
        Base64::parse(key["key"].as_str().unwrap()).unwrap(),
    );
    verify_json(&PublicKeyMap::from([(server_name.to_owned(), set)]), &keys).expect("self-signed");

    let unknown = client
        .get(format!("{}/_matrix/client/v3/nope", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["errcode"], "M_UNRECOGNIZED");
}

#[tokio::test]
async fn embedded_default_runs_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = hearth();
    command
        .arg("serve")
        .current_dir(dir.path())
        .env("HEARTH_SERVER__LISTEN", "127.0.0.1:0");
    let server = serve(command);
    check_endpoints(&server, "localhost").await;
    let data = dir.path().join("hearth-data");
    for file in ["hearth.db", "signing.key", "media"] {
        assert!(data.join(file).exists(), "{file} created in ./hearth-data");
    }
}

#[tokio::test]
async fn init_then_serve_with_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("server_name = \"example.org\""));
    let key = dir.path().join("data/signing.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A second init refuses to overwrite.
    let again = hearth()
        .args(["init", "--server-name", "example.org", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!again.status.success());

    let mut command = hearth();
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("HEARTH_SERVER__LISTEN", "127.0.0.1:0");
    let server = serve(command);
    check_endpoints(&server, "example.org").await;
    assert!(Path::new(&dir.path().join("data/hearth.db")).exists());
}

#[test]
fn bad_config_names_every_bad_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"nowhere\"\nserver_nme = \"x\"\n[database]\nbackend = \"postgres\"\n",
    )
    .unwrap();
    let output = hearth()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("HEARTH_DATABASE__MAX_CONNECTIONS", "lots")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in [
        "server.listen",
        "server.server_nme",
        "database.max_connections",
    ] {
        assert!(stderr.contains(key), "{key} not named in:\n{stderr}");
    }
    assert!(
        stderr.contains("HEARTH_DATABASE__MAX_CONNECTIONS"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("hearth-data").exists(),
        "nothing is created from a bad config"
    );
}

#[test]
fn missing_config_file_is_an_error() {
    let output = hearth()
        .args(["serve", "--config", "/nonexistent/hearth.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/hearth.toml"));
}

#[tokio::test]
async fn admin_creates_users_that_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let create = |name: &str, admin: bool| {
        let mut command = hearth();
        command
            .args(["admin", "create-user", name, "--password", "s3cret-pw"])
            .current_dir(dir.path());
        if admin {
            command.arg("--admin");
        }
        command.output().unwrap()
    };
    let output = create("root", true);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("@root:localhost (admin)"));
    let again = create("root", false);
    assert!(!again.status.success(), "a taken name is refused");
    assert!(
        !create("Bad Name", false).status.success(),
        "an invalid name is refused"
    );

    let mut command = hearth();
    command
        .arg("serve")
        .current_dir(dir.path())
        .env("HEARTH_SERVER__LISTEN", "127.0.0.1:0");
    let server = serve(command);
    let login: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_matrix/client/v3/login", server.base))
        .json(&serde_json::json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "root"},
            "password": "s3cret-pw"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["user_id"], "@root:localhost", "{login}");
}

#[tokio::test]
async fn admin_registration_tokens_let_people_register() {
    let dir = tempfile::tempdir().unwrap();
    let admin = |args: &[&str]| {
        let output = hearth()
            .args(["admin", "registration-token"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, limited, stderr) = admin(&["create", "--uses", "2", "--expires-in-hours", "24"]);
    assert!(ok, "{stderr}");
    let limited = limited.trim().to_owned();
    assert_eq!(limited.len(), 16, "just the token on stdout: {limited:?}");
    assert!(
        limited.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{limited}"
    );
    assert!(stderr.contains("2 uses"), "{stderr}");
    let (ok, unlimited, stderr) = admin(&["create"]);
    assert!(ok, "{stderr}");
    let unlimited = unlimited.trim().to_owned();
    assert_ne!(limited, unlimited);
    let (ok, _, _) = admin(&["create", "--uses", "0"]);
    assert!(!ok, "a token with no uses is refused");

    let (ok, list, stderr) = admin(&["list"]);
    assert!(ok, "{stderr}");
    fn line<'a>(list: &'a str, token: &str) -> Vec<&'a str> {
        list.lines()
            .find(|l| l.starts_with(token))
            .unwrap_or_else(|| panic!("{token} not in:\n{list}"))
            .split_whitespace()
            .collect()
    }
    let row = line(&list, &limited);
    assert_eq!(
        (row[1], row[2], row.last().copied()),
        ("0/2", "0", Some("yes")),
        "{list}"
    );
    assert!(row[3].starts_with("20"), "an expiry date: {list}");
    let row = line(&list, &unlimited);
    assert_eq!(row[1..], ["0/unlimited", "0", "never", "yes"], "{list}");

    // A server that requires tokens lets the holder register, and counts the use.
    let mut command = hearth();
    command
        .arg("serve")
        .current_dir(dir.path())
        .env("HEARTH_SERVER__LISTEN", "127.0.0.1:0")
        .env("HEARTH_REGISTRATION__ENABLED", "true")
        .env("HEARTH_REGISTRATION__TOKEN_REQUIRED", "true");
    let server = serve(command);
    let client = reqwest::Client::new();
    let register = |name: &str, token: &str| {
        client
            .post(format!("{}/_matrix/client/v3/register", server.base))
            .json(&serde_json::json!({
                "username": name, "password": "pw-123456",
                "auth": {"type": "m.login.registration_token", "token": token}
            }))
            .send()
    };
    let response = register("alice", "not-a-token").await.unwrap();
    assert_eq!(response.status(), 401);
    let response = register("alice", &limited).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], "@alice:localhost");

    let (ok, list, stderr) = admin(&["list"]);
    assert!(ok, "{stderr}");
    assert_eq!(line(&list, &limited)[1], "1/2", "{list}");
    drop(server);
}

/// `hearth keys rotate`: the server signs with a new key from its next start and still
/// publishes the old one under `old_verify_keys`. And a second `hearth serve` on the same data
/// exits at once, saying why.
#[tokio::test]
async fn keys_rotate_and_one_server_per_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = init(dir.path());
    let before = std::fs::read_to_string(dir.path().join("data/signing.key")).unwrap();
    let old_version = before.split_whitespace().nth(1).unwrap().to_owned();
    let rotated = hearth()
        .args(["keys", "--config"])
        .arg(&config)
        .arg("rotate")
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    let said = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        said.contains(&format!("ed25519:{old_version} kept")),
        "{said}"
    );

    let mut command = hearth();
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("HEARTH_SERVER__LISTEN", "127.0.0.1:0");
    let server = serve(command);
    check_endpoints(&server, "example.org").await;
    let keys: serde_json::Value = reqwest::get(format!("{}/_matrix/key/v2/server", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old_id = format!("ed25519:{old_version}");
    assert!(keys["verify_keys"].get(&old_id).is_none(), "{keys}");
    assert!(
        keys["old_verify_keys"][&old_id]["key"].is_string(),
        "{keys}"
    );
    assert!(
        keys["old_verify_keys"][&old_id]["expired_ts"].is_u64(),
        "{keys}"
    );

    let second = hearth()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("HEARTH_SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another Hearth process"), "{stderr}");
    drop(server);
}
