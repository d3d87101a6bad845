//! What the OCSF tests share: the real binary's `process --format ocsf`, and the project's
//! OCSF 1.5.0 validator (`tests/python/ocsf_validate.py`, pydantic-ocsf plus the schema's
//! object constraints, types and ranges) run over NDJSON events.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_mde-relay");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const HOW_TO: &str = "the OCSF checks need Python 3 with pydantic-ocsf: run .ci/test, which \
    installs it into target/ocsf-venv, or `python3 -m venv target/ocsf-venv && \
    target/ocsf-venv/bin/pip install -r tests/python/requirements-ocsf.txt` (or point \
    OCSF_PYTHON at a Python that has it)";

/// The Python with pydantic-ocsf: `OCSF_PYTHON`, else the venv `.ci/test` makes.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OCSF_PYTHON") {
        return p.into();
    }
    repo().join("target/ocsf-venv/bin/python")
}

/// The validator's summary of a stream of events.
#[derive(Debug)]
pub struct Summary {
    pub events: u64,
    pub classes: BTreeMap<u64, u64>,
    pub errors: Vec<Value>,
    /// Every kind of problem ("class: problem") and how many events had it.
    pub problems: BTreeMap<String, u64>,
}

/// Runs the validator over NDJSON events.
pub fn validate(ndjson: &[u8]) -> Summary {
    let py = python();
    let mut child = Command::new(&py)
        .arg(repo().join("tests/python/ocsf_validate.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): {HOW_TO}", py.display()));
    // Feed stdin from a thread: the validator prints only at the end, but a large input must
    // not deadlock on a full pipe either way.
    let mut stdin = child.stdin.take().unwrap();
    let input = ndjson.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "the OCSF validator failed ({:?}): {}\n{}\n{HOW_TO}",
            out.status.code(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if let Some(e) = v.get("setup_error") {
        panic!("{e}: {HOW_TO}");
    }
    Summary {
        events: v["events"].as_u64().unwrap(),
        classes: v["classes"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.parse().unwrap_or(u64::MAX), n.as_u64().unwrap()))
            .collect(),
        errors: v["errors"].as_array().cloned().unwrap_or_default(),
        problems: v["problem_counts"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

pub fn assert_valid(what: &str, s: &Summary) {
    assert!(
        s.errors.is_empty(),
        "{what}: events the OCSF validator rejects:\n{}",
        serde_json::to_string_pretty(&s.errors).unwrap()
    );
}

/// `process --format ocsf PATH --out -`: the events (stdout), checking the run succeeded and
/// dead-lettered nothing.
pub fn process_ocsf(path: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["process", "--format", "ocsf", "--out", "-"])
        .arg(path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "process failed: {err}");
    assert!(err.contains(" 0 dead-lettered"), "{err}");
    out.stdout
}

pub fn lines(ndjson: &[u8]) -> Vec<Value> {
    ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}
