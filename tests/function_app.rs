//! The function app layout the Functions host reads: `host.json` at the root, one
//! `<Name>/function.json` per function, `local.settings.json` for Azurite. Checks the files
//! against the protocol and the settings table, and that the binary routes every function.

use mde_relay::config::{setting, SETTINGS};
use serde_json::Value;
use std::path::Path;

fn json(path: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const FUNCTIONS: [&str; 2] = ["BlobCreated", "Tail"];

#[test]
fn host_json_starts_the_binary_with_serve() {
    let h = json("host.json");
    assert_eq!(h["version"], "2.0");
    let d = &h["customHandler"]["description"];
    assert_eq!(d["defaultExecutablePath"], "mde-relay");
    assert_eq!(d["arguments"], serde_json::json!(["serve"]));
    assert_eq!(
        h["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(h["extensionBundle"]["version"], "[4.*, 5.0.0)");
    // Invocations stop draining before the host gives up on them.
    let t: Vec<u64> = h["functionTimeout"]
        .as_str()
        .unwrap()
        .split(':')
        .map(|x| x.parse().unwrap())
        .collect();
    let timeout = t[0] * 3600 + t[1] * 60 + t[2];
    let drain = mde_relay::config::parse_long_duration(
        setting("RELAY_MAX_DRAIN_TIME").unwrap().default.unwrap(),
    )
    .unwrap();
    // A sink send may run SEND_GRACE past the drain deadline; the answer must still beat
    // functionTimeout (which kills the worker and every invocation in flight).
    assert!(
        drain.as_secs() + mde_relay::drain::SEND_GRACE.as_secs() + 30 <= timeout,
        "RELAY_MAX_DRAIN_TIME + SEND_GRACE < functionTimeout"
    );
    assert_eq!(h["extensions"]["queues"]["maxDequeueCount"], 5);
}

#[test]
fn function_folders_use_known_settings_and_connections() {
    for f in FUNCTIONS {
        let j = json(&format!("{f}/function.json"));
        let b = &j["bindings"][0];
        assert_eq!(b["direction"], "in");
        for v in b.as_object().unwrap().values().filter_map(Value::as_str) {
            if let Some(name) = v.strip_prefix('%').and_then(|v| v.strip_suffix('%')) {
                assert!(
                    setting(name).is_some(),
                    "{f}: %{name}% is not in the settings table"
                );
            }
        }
        if let Some(c) = b["connection"].as_str() {
            assert!(setting(c).is_some(), "{f}: connection {c}");
        }
    }
    let q = json("BlobCreated/function.json");
    assert_eq!(q["bindings"][0]["type"], "queueTrigger");
    assert_eq!(q["bindings"][0]["queueName"], "%RELAY_EVENTS_QUEUE%");
    assert_eq!(q["bindings"][0]["connection"], "AzureWebJobsStorage");
    let t = json("Tail/function.json");
    assert_eq!(t["bindings"][0]["type"], "timerTrigger");
    assert_eq!(t["bindings"][0]["schedule"], "%RELAY_TAIL_SCHEDULE%");
}

#[test]
fn local_settings_target_azurite_without_secrets() {
    let l = json("local.settings.json");
    let v = l["Values"].as_object().unwrap();
    assert_eq!(v["AzureWebJobsStorage"], "UseDevelopmentStorage=true");
    assert_eq!(v["MdeExportStorage"], "UseDevelopmentStorage=true");
    for (k, val) in v {
        let s = val.as_str().unwrap_or_default();
        assert!(
            !s.contains("AccountKey") && !s.contains("sig="),
            "{k} holds a secret"
        );
        if k != "FUNCTIONS_WORKER_RUNTIME" {
            assert!(
                SETTINGS.iter().any(|x| x.name == k),
                "{k} is not a known setting"
            );
        }
    }
}

/// The binary answers `GET /`, routes every function folder, and fails (non-2xx, so the
/// trigger retries) an invocation it cannot read. None of this touches storage.
#[tokio::test]
async fn every_function_folder_has_a_route() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        // Nothing listens here: any storage call would fail loudly.
        .env(
            "AzureWebJobsStorage",
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.2",
        )
        .env(
            "MdeExportStorage",
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.2",
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed however the test ends, so a failure never leaves a server holding our pipes.
    let _child = KillOnDrop(child);
    let c = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..400 {
        if c.get(&base).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(ready, "GET / answered");
    for f in FUNCTIONS {
        let r = c
            .post(format!("{base}/{f}"))
            .header("Content-Type", "application/json")
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            500,
            "{f} has a route and fails bad bodies"
        );
        let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(body["Outputs"], serde_json::json!({}));
        assert!(body["Logs"][0].as_str().unwrap().contains("not valid JSON"));
    }
    // Announce a body over the limit and send none of it: the handler must refuse it from the
    // headers alone. (Streaming 5 MB instead races the early 413 against the upload.)
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            s,
            "POST /BlobCreated HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            5 << 20
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "body limit: {answer}");
    let r = c
        .post(format!("{base}/NoSuchFunction"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Kills the child process when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
