//! `mde-relay status` from an operator's machine (issue 16, point 5): the relay account accepts
//! Entra ID tokens only, so the CLI takes the signed-in Azure CLI's token when
//! `RELAY_CREDENTIAL=azurecli`.
//!
//! The real parts: the binary, `azure_identity`'s `AzureCliCredential` (which runs
//! `az account get-access-token`), and Azurite in its OAuth mode (`--oauth basic`), which checks
//! every bearer token's audience, issuer and lifetime (not its signature) and accepts bearer
//! tokens over HTTPS only. The stand-ins: `az` is a script on `PATH` that prints a token the way
//! the Azure CLI does, and Azurite serves HTTPS with a certificate made here by `openssl`, which
//! the binary trusts through `SSL_CERT_FILE` (read by rustls' native certificate loader).
//! Everything stays on loopback: no managed-identity endpoint is ever tried.

use azure_core::http::RequestContent;
use base64::Engine;
use mde_relay::azure::{StorageAccount, AZURITE_ACCOUNT, AZURITE_KEY};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_ok(cmd: &mut Command, what: &str) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}); the test needs openssl on PATH"));
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A test CA and a server certificate for 127.0.0.1 signed by it (rustls refuses a CA
/// certificate as the server's own). Returns (CA file, certificate, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run_ok(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-days", "2", "-subj", "/CN=mde-relay test CA"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem")),
        "openssl req (CA)",
    );
    run_ok(
        Command::new("openssl")
            .arg("req")
            .args(ec)
            .args(["-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(p("key.pem"))
            .arg("-out")
            .arg(p("server.csr")),
        "openssl req (server)",
    );
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("server.ext"))
            .arg("-out")
            .arg(p("cert.pem")),
        "openssl x509 (sign)",
    );
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

/// Azurite over HTTPS with bearer-token checks, on free ports, in memory; killed on drop.
struct OAuthAzurite {
    child: Child,
    blob: u16,
    queue: u16,
}

impl OAuthAzurite {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Self {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/azurite");
        assert!(
            bin.exists(),
            "{} is missing: run .ci/test, which installs Azurite from npm (npm ci)",
            bin.display()
        );
        let (blob, queue, table) = (free_port(), free_port(), free_port());
        let child = Command::new(&bin)
            .args([
                "--silent",
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
            ])
            .args(["--oauth", "basic"])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(["--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1"])
            .args(["--tableHost", "127.0.0.1"])
            .args(["--blobPort", &blob.to_string()])
            .args(["--queuePort", &queue.to_string()])
            .args(["--tablePort", &table.to_string()])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("azurite.stderr")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e})", bin.display()));
        let a = OAuthAzurite { child, blob, queue };
        let deadline = Instant::now() + Duration::from_secs(60);
        for port in [blob, queue] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "Azurite (--oauth basic) did not listen on {port}: {}",
                    std::fs::read_to_string(dir.join("azurite.stderr")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        a
    }

    fn blob_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.blob)
    }

    fn queue_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.queue)
    }
}

impl Drop for OAuthAzurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An unsigned JWT with the claims Azurite checks, as Entra ID would issue for `aud`.
fn token(aud: &str) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": aud,
        "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "oid": "11111111-2222-3333-4444-555555555555",
        "upn": "operator@example.com",
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    });
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(&claims)
    )
}

/// A directory holding an `az` that logs its arguments and prints a token for `aud` as
/// `az account get-access-token -o json` does (Azure CLI 2.54+ has `expires_on`).
fn fake_az(dir: &Path, aud: &str) -> (PathBuf, PathBuf) {
    let bin = dir.join(format!("bin-{}", aud.len()));
    std::fs::create_dir_all(&bin).unwrap();
    let log = bin.join("az.log");
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let answer = json!({
        "accessToken": token(aud),
        "expiresOn": expires.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        "expires_on": expires.timestamp(),
        "subscription": "00000000-0000-0000-0000-000000000000",
        "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "tokenType": "Bearer",
    });
    std::fs::write(bin.join("answer.json"), answer.to_string()).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\ncat '{}'\n",
        log.display(),
        bin.join("answer.json").display()
    );
    let az = bin.join("az");
    std::fs::write(&az, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, log)
}

/// `mde-relay status --format json` with the settings an operator copies from the app (the
/// identity-based connection settings, `__credential=managedidentity` and `__clientId`
/// included) plus `RELAY_CREDENTIAL=azurecli`, the fake `az` first on `PATH`.
fn status(a: &OAuthAzurite, ca: &Path, az_dir: &Path, prefix: &str) -> Output {
    let path = format!(
        "{}:{}",
        az_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let client_id = "00000000-0000-0000-0000-00000000c11d";
    Command::new(env!("CARGO_BIN_EXE_mde-relay"))
        .args(["status", "--format", "json"])
        .env_clear()
        .env("PATH", path)
        .env("SSL_CERT_FILE", ca)
        .env("RELAY_CREDENTIAL", "azurecli")
        .env("MdeExportStorage__blobServiceUri", a.blob_endpoint())
        .env("MdeExportStorage__credential", "managedidentity")
        .env("MdeExportStorage__clientId", client_id)
        .env("AzureWebJobsStorage__blobServiceUri", a.blob_endpoint())
        .env("AzureWebJobsStorage__queueServiceUri", a.queue_endpoint())
        .env("AzureWebJobsStorage__credential", "managedidentity")
        .env("AzureWebJobsStorage__clientId", client_id)
        .env("RELAY_CONTAINER_PREFIX", prefix)
        .env("RELAY_EVENTS_QUEUE", "mde-blob-created")
        .env("RELAY_SINK", "stdout")
        .output()
        .expect("run mde-relay status")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_from_a_workstation_uses_the_azure_cli_token() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let data = dir.path().join("azurite");
    std::fs::create_dir_all(&data).unwrap();
    let azurite = OAuthAzurite::start(&data, &cert, &key);

    // Seed with the account key (Azurite accepts it beside tokens); this process trusts the
    // test CA the same way the binary does. Set before any client exists, in a test binary
    // with this one test.
    std::env::set_var("SSL_CERT_FILE", &ca);
    let cs = format!(
        "DefaultEndpointsProtocol=https;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};QueueEndpoint={}",
        azurite.blob_endpoint(),
        azurite.queue_endpoint()
    );
    let seed = StorageAccount::from_connection_string("seed", &cs).unwrap();
    let svc = seed.blob_service().unwrap();
    // A fresh, in-memory Azurite: the export's own names fit.
    let prefix = "insights-logs-advancedhunting-".to_string();
    let container = format!("{prefix}deviceprocessevents");
    svc.blob_container_client(&container)
        .create(None)
        .await
        .expect("create the export container over HTTPS with the key");
    let hour = chrono::Utc::now();
    let blob = format!(
        "tenantId=00000000-0000-0000-0000-000000000001/y={}/m={}/d={}/h={}/m=00/PT1H.json",
        hour.format("%Y"),
        hour.format("%m"),
        hour.format("%d"),
        hour.format("%H")
    );
    let rows = b"{\"time\":\"2026-12-03T10:00:00Z\",\"category\":\"AdvancedHunting-DeviceProcessEvents\",\"properties\":{}}\n";
    let append = svc.blob_client(&container, &blob).append_blob_client();
    append.create(None).await.expect("create append blob");
    append
        .append_block(RequestContent::from(rows.to_vec()), rows.len() as u64, None)
        .await
        .expect("append");

    // The Azure CLI's token is accepted: the table shows every byte pending.
    let (az_dir, az_log) = fake_az(dir.path(), "https://storage.azure.com");
    let o = status(&azurite, &ca, &az_dir, &prefix);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "status with the Azure CLI token failed: {stderr}"
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("status JSON");
    let table = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["container"] == container.as_str())
        .unwrap_or_else(|| panic!("no entry for {container}: {v:#}"));
    assert_eq!(table["pending_bytes"], rows.len() as u64, "{table:#}");
    assert!(
        v["poison_queue"]
            .to_string()
            .contains("mde-blob-created-poison"),
        "the poison queue was read with the token: {v:#}"
    );
    let calls = std::fs::read_to_string(&az_log).expect("the fake az was run");
    let n = calls.lines().count();
    assert!(n >= 1);
    for line in calls.lines() {
        assert!(
            line.starts_with(
                "account get-access-token -o json --scope https://storage.azure.com/.default"
            ),
            "az was asked for: {line}"
        );
    }
    eprintln!("status ran `az account get-access-token` {n} time(s)");

    // A token Azurite must refuse (wrong audience) stops `status` with exit code 2: the test
    // above passes because the token was checked and accepted, not because none was asked for.
    let (bad_dir, _) = fake_az(dir.path(), "https://management.azure.com");
    let o = status(&azurite, &ca, &bad_dir, &prefix);
    assert_eq!(
        o.status.code(),
        Some(2),
        "status with a token for the wrong audience: stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
