//! End-to-end tests of `mde-relay gen` with the real binary.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mde-relay");

fn gen(dir: &std::path::Path, name: &str, args: &[&str]) -> (std::process::Output, Vec<u8>) {
    let out_file = dir.join(name);
    let out = Command::new(BIN)
        .arg("gen")
        .args(args)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    let data = std::fs::read(&out_file).unwrap_or_default();
    (out, data)
}

#[test]
fn gen_is_deterministic_crlf_and_processable() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--table",
        "deviceprocessevents",
        "--rows",
        "25",
        "--seed",
        "3",
    ];
    let (o1, a) = gen(dir.path(), "a.json", &args);
    let (o2, b) = gen(dir.path(), "b.json", &args);
    assert!(o1.status.success() && o2.status.success());
    assert_eq!(a, b);
    assert_eq!(a.windows(2).filter(|w| w == b"\r\n").count(), 25);
    assert_eq!(a.iter().filter(|&&c| c == b'\n').count(), 25);
    let (_, c) = gen(
        dir.path(),
        "c.json",
        &[
            "--table",
            "DeviceProcessEvents",
            "--rows",
            "25",
            "--seed",
            "4",
        ],
    );
    assert_ne!(a, c);

    let out = Command::new(BIN)
        .arg("process")
        .arg(dir.path().join("a.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let events = out.stdout.iter().filter(|&&c| c == b'\n').count();
    assert_eq!(events, 25);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0 dead-lettered"), "{err}");
}

#[test]
fn gen_bytes_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (o, data) = gen(
        dir.path(),
        "n.json",
        &["--table", "DeviceNetworkEvents", "--bytes", "64KiB"],
    );
    assert!(o.status.success());
    assert!(data.len() >= 64 * 1024);
    // Stops at the first row past the size: without its last row the file is under it.
    let body = &data[..data.len() - 2];
    let last_start = body.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    assert!(last_start < 64 * 1024);
}

#[test]
fn gen_unknown_table_lists_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _) = gen(dir.path(), "x.json", &["--table", "DeviceToasterEvents"]);
    assert!(!o.status.success());
    assert!(
        !dir.path().join("x.json").exists(),
        "no output file for a refused table"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("DeviceToasterEvents"), "{err}");
    assert!(
        err.contains("DeviceProcessEvents") && err.contains("AlertEvidence"),
        "{err}"
    );
}
