//! The deployment package: `scripts/package.sh` writes a zip whose layout is what the Functions
//! host loads, and the executable in it answers the host's readiness ping when started the way
//! the host starts it.
//!
//! The test packages the binary cargo already built for the tests (`--binary`), a debug build:
//! a release build would add minutes to every CI run, and neither the layout nor the start-up
//! protocol depends on the optimisation level. The release build itself is the same script
//! without `--binary` (docs/deploy.md).
//!
//! Needs `zip` and `unzip` (Debian packages; `.ci/test` installs them when missing), and the
//! repo root's `host.json` and `<Function>/function.json` folders with a `serve` command that
//! implements the custom-handler protocol.
//!
//! `package_builds_a_binary_for_glibc_2_28` runs the script for real: cargo-zigbuild and zig
//! from PyPI (installed by the script into `target/zigbuild-venv` on first use), a build for
//! `x86_64-unknown-linux-gnu.2.28` in `target/package` (the `dev` profile: symbol versions come
//! from the link, not the optimisation level, and a release build would add minutes to CI), and
//! the zip checked as the platform would load it.

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` not found: apt-get install zip unzip (.ci/test installs them when missing)"
    );
}

/// Function folders at the repo root: every directory holding a function.json.
fn function_folders() -> BTreeSet<String> {
    std::fs::read_dir(repo())
        .expect("read repo root")
        .filter_map(|e| {
            let p = e.ok()?.path();
            p.join("function.json")
                .is_file()
                .then(|| p.file_name().unwrap().to_string_lossy().into_owned())
        })
        .collect()
}

/// `unzip -Z` (zipinfo) listing: file entries (not directories) with their Unix mode string.
fn zip_entries(zip: &Path) -> Vec<(String, String)> {
    let out = Command::new("unzip")
        .arg("-Z")
        .arg(zip)
        .output()
        .expect("run unzip -Z");
    assert!(out.status.success(), "unzip -Z failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('-') || l.starts_with('l'))
        .map(|l| {
            let mode = l.split_whitespace().next().unwrap().to_string();
            let name = l.split_whitespace().last().unwrap().to_string();
            (name, mode)
        })
        .collect()
}

/// Kills the handler when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `GET /` as the host sends it; `Some(status line)` on any HTTP answer.
fn get_root(port: u16) -> Option<String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next()?.to_string();
    line.starts_with("HTTP/1.").then_some(line)
}

#[test]
fn package_has_the_functions_layout_and_the_binary_answers_the_host() {
    require_tool("zip");
    require_tool("unzip");
    let host_json_path = repo().join("host.json");
    assert!(
        host_json_path.is_file(),
        "no host.json at the repo root: the Functions handler (branch `handler`) adds host.json \
         (customHandler running `mde-relay serve`), BlobCreated/function.json, Tail/function.json \
         and `mde-relay serve`; merge it"
    );
    let functions = function_folders();
    assert!(
        functions.contains("BlobCreated") && functions.contains("Tail"),
        "expected BlobCreated/ and Tail/ function folders at the repo root, found {functions:?}"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let zip = tmp.path().join("mde-relay.zip");
    let out = Command::new("bash")
        .arg(repo().join("scripts/package.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_mde-relay"))
        .arg("--out")
        .arg(&zip)
        .output()
        .expect("run scripts/package.sh");
    assert!(
        out.status.success(),
        "scripts/package.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Layout: host.json at the root, <Function>/function.json beside it, the executable with
    // its run bit; nothing else (local.settings.json holds local secrets and must not ship).
    let host: Value =
        serde_json::from_slice(&std::fs::read(&host_json_path).unwrap()).expect("host.json");
    let desc = &host["customHandler"]["description"];
    let exe = desc["defaultExecutablePath"]
        .as_str()
        .expect("host.json customHandler.description.defaultExecutablePath");
    let entries = zip_entries(&zip);
    let names: BTreeSet<String> = entries.iter().map(|(n, _)| n.clone()).collect();
    let mut expected: BTreeSet<String> = functions
        .iter()
        .map(|f| format!("{f}/function.json"))
        .collect();
    expected.insert("host.json".into());
    expected.insert(exe.into());
    assert_eq!(names, expected, "zip entries");
    let exe_mode = &entries.iter().find(|(n, _)| n == exe).unwrap().1;
    assert_eq!(
        exe_mode, "-rwxr-xr-x",
        "the executable keeps its run bit in the zip"
    );

    // Unpacked (unzip restores the modes, as Premium/Dedicated do), files are the repo's.
    let app = tmp.path().join("app");
    let st = Command::new("unzip")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(&app)
        .status()
        .expect("unzip");
    assert!(st.success());
    assert_eq!(
        std::fs::read(app.join("host.json")).unwrap(),
        std::fs::read(&host_json_path).unwrap()
    );
    for f in &functions {
        assert_eq!(
            std::fs::read(app.join(f).join("function.json")).unwrap(),
            std::fs::read(repo().join(f).join("function.json")).unwrap(),
            "{f}/function.json"
        );
    }
    let mode = std::fs::metadata(app.join(exe))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "unpacked executable mode {mode:o}");

    // Start it the way the host does: the executable and arguments of host.json, working
    // directory the app root (or host.json's workingDirectory under it), the port in
    // FUNCTIONS_CUSTOMHANDLER_PORT, the app settings as environment variables (locally:
    // local.settings.json `Values`, which point at Azurite).
    let args: Vec<String> = desc["arguments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let workdir = match desc["workingDirectory"].as_str() {
        Some(d) if !d.is_empty() => app.join(d),
        _ => app.clone(),
    };
    let mut settings: Vec<(String, String)> = Vec::new();
    if let Ok(text) = std::fs::read_to_string(repo().join("local.settings.json")) {
        let local: Value = serde_json::from_str(&text).expect("local.settings.json is JSON");
        for (k, v) in local["Values"].as_object().into_iter().flatten() {
            if let Some(v) = v.as_str() {
                settings.push((k.clone(), v.to_string()));
            }
        }
    }
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = tmp.path().join("handler.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(app.join(exe));
    cmd.args(&args)
        .current_dir(&workdir)
        .envs(settings)
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    let mut child = Running(cmd.spawn().expect("start the packaged executable"));

    // The host pings GET / every 25 ms for at most 30 s and accepts any HTTP answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(line) = get_root(port) {
            break line;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!(
                "`{exe} {}` exited ({status}) before answering GET /:\n{}",
                args.join(" "),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no answer to GET / on port {port} within 30 s (the host would give up):\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(answer.starts_with("HTTP/1."), "{answer}");
}

/// Highest `GLIBC_x.y` symbol version `objdump -T` lists for `binary`, if any.
fn max_glibc(binary: &Path) -> Option<(u32, u32)> {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(binary)
        .output()
        .expect("run objdump -T");
    assert!(out.status.success(), "objdump -T failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let v: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
}

#[test]
fn package_builds_a_binary_for_glibc_2_28() {
    require_tool("zip");
    require_tool("unzip");
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v objdump")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "`objdump` not found: apt-get install binutils");
    let tmp = tempfile::tempdir().expect("tempdir");
    let zip = tmp.path().join("mde-relay.zip");
    let mut cmd = Command::new("bash");
    // The nested cargo sees the environment of a hand-run script, not the CARGO_* variables
    // `cargo test` gives this process (which would make it rebuild crates on every switch).
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CARGO_") && k != "CARGO_HOME" {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("CARGO");
    let out = cmd
        .arg(repo().join("scripts/package.sh"))
        .args(["--profile", "dev", "--out"])
        .arg(&zip)
        .env("CARGO_TARGET_DIR", repo().join("target/package"))
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/package.sh");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/package.sh failed (it installs cargo-zigbuild and ziglang from PyPI into \
         target/zigbuild-venv; that needs python3 with venv and the PyPI registry):\n{log}"
    );

    // Layout and modes.
    let entries = zip_entries(&zip);
    let names: BTreeSet<String> = entries.iter().map(|(n, _)| n.clone()).collect();
    let mut expected: BTreeSet<String> = function_folders()
        .iter()
        .map(|f| format!("{f}/function.json"))
        .collect();
    expected.insert("host.json".into());
    expected.insert("mde-relay".into());
    assert_eq!(names, expected, "zip entries");
    let mode = &entries.iter().find(|(n, _)| n == "mde-relay").unwrap().1;
    assert_eq!(mode, "-rwxr-xr-x", "mde-relay is packaged with mode 0755");

    // The packaged binary: dynamically linked against glibc, never above 2.28.
    let app = tmp.path().join("app");
    let st = Command::new("unzip")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(&app)
        .status()
        .expect("unzip");
    assert!(st.success());
    let exe = app.join("mde-relay");
    let glibc = max_glibc(&exe).unwrap_or_else(|| {
        panic!("the packaged binary lists no GLIBC_ symbol versions; expected a glibc build")
    });
    assert!(
        glibc <= (2, 28),
        "the packaged binary needs GLIBC_{}.{}; the Flex Consumption image may only have 2.28",
        glibc.0,
        glibc.1
    );
    assert!(
        log.contains("GLIBC_"),
        "the script reports the glibc it needs:\n{log}"
    );
    // And it runs (this machine's glibc is newer, which is fine).
    let v = Command::new(&exe)
        .arg("--version")
        .output()
        .expect("run the packaged binary");
    assert!(v.status.success(), "{v:?}");
    assert!(String::from_utf8_lossy(&v.stdout).contains("mde-relay"));
}
