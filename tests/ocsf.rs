//! `process --format ocsf` end to end: the real binary over generated rows of every Device
//! table, the shipped `demo/` export and hand-written external-shaped rows
//! (`tests/fixtures/ocsf/`), every event validated against OCSF 1.5.0 by pydantic-ocsf
//! (`tests/python/ocsf_validate.py`, which also rejects attributes a class or object does not
//! define). The validator comes from PyPI: `.ci/test` installs it into `target/ocsf-venv`.

use serde_json::Value;
use std::collections::HashSet;
use std::process::Command;

mod ocsf_check;

use ocsf_check::{assert_valid, lines, process_ocsf, repo, validate, BIN};

/// Every table `mde-relay gen` writes with a hand-written writer (realistic rows of the
/// mapped tables: the Device tables, alerts, email, identity, cloud apps).
fn written_tables() -> Vec<&'static str> {
    mde_relay::gen::SUPPORTED_TABLES.to_vec()
}

#[test]
fn generated_rows_of_every_written_table_validate() {
    let dir = tempfile::tempdir().unwrap();
    let rows_per_table = 400;
    for table in written_tables() {
        let out = Command::new(BIN)
            .args(["gen", "--table", table, "--seed", "11", "--rows"])
            .arg(rows_per_table.to_string())
            .arg("--out")
            .arg(dir.path().join(format!("{table}.json")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gen {table}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let events = process_ocsf(dir.path());
    let s = validate(&events);
    assert_valid("generated rows", &s);
    assert_eq!(s.events, rows_per_table * written_tables().len() as u64);
    // Every mapped class and ActionType the generator writes shows up.
    for class in [
        0, 1001, 1005, 1007, 1009, 2004, 3002, 4001, 4009, 5001, 6003, 201001, 201002,
    ] {
        assert!(
            s.classes.get(&class).is_some_and(|&n| n > 0),
            "no event of class {class}: {:?}",
            s.classes
        );
    }
    // Tables with a class never fall back to Base Event on generated rows.
    for e in lines(&events) {
        let table = e["metadata"]["log_name"].as_str().unwrap();
        let action = e["metadata"]["event_code"].as_str().unwrap_or("");
        let class = e["class_uid"].as_u64().unwrap();
        let want = match (table, action) {
            ("DeviceProcessEvents", _) => 1007,
            ("DeviceFileEvents", _) => 1001,
            ("DeviceImageLoadEvents", _) => 1005,
            ("DeviceLogonEvents", _) => 3002,
            ("DeviceNetworkEvents", _) => 4001,
            ("DeviceRegistryEvents", a) if a.starts_with("RegistryKey") => 201001,
            ("DeviceRegistryEvents", _) => 201002,
            ("DeviceEvents", "PowerShellCommand") => 1009,
            ("DeviceEvents", "AntivirusDetection") => 2004,
            ("AlertInfo" | "AlertEvidence", _) => 2004,
            ("IdentityLogonEvents", _) => 3002,
            ("EmailEvents", _) => 4009,
            ("CloudAppEvents", _) => 6003,
            ("DeviceInfo" | "DeviceNetworkInfo", _) => 5001,
            _ => 0,
        };
        assert_eq!(class, want, "{table}/{action}: {e}");
    }
}

#[test]
fn demo_export_validates() {
    let events = process_ocsf(&repo().join("demo"));
    let s = validate(&events);
    assert_valid("demo/", &s);
    assert_eq!(s.events, 109, "{:?}", s.classes);
    assert!(s.classes.contains_key(&1007) && s.classes.contains_key(&4001));
}

/// The hand-written rows in tests/fixtures/ocsf/external-shapes.json, in order: the class each
/// one must become (odd shapes included: object AdditionalFields, ports as "", booleans as
/// 0/1/"true", missing names, unknown tables).
const EXTERNAL_CLASSES: &[u64] = &[
    1007, 1007, // Windows and macOS process creation
    4001, 4001, 4001, 4001, 4001, 4001, // success, inbound, failed, listening, http, dns
    1001, 1001, 1001, 1001, // created, renamed, deleted (name from path), modified
    3002, 3002, 3002, // success, failed, attempted
    201002, 201002, 201001, 201002, 201001, // value set, default value, key created, ...
    1005,   // image load
    1009, 4003, 4003, 2004, 2004, 0, 0, // DeviceEvents by ActionType
    0, // PowerShellCommand without its command
    5001, 3002, 0, // DeviceInfo, IdentityLogonEvents, an unknown table
];

#[test]
fn external_shapes_validate_and_map_to_their_classes() {
    let path = repo().join("tests/fixtures/ocsf/external-shapes.json");
    let events = process_ocsf(&path);
    let s = validate(&events);
    assert_valid("tests/fixtures/ocsf/external-shapes.json", &s);
    let got: Vec<u64> = lines(&events)
        .iter()
        .map(|e| e["class_uid"].as_u64().unwrap())
        .collect();
    assert_eq!(got, EXTERNAL_CLASSES);
}

/// Columns whose values OCSF normalizes to an enum caption (the original text is the caption's
/// source, documented in docs/ocsf.md), so they do not appear verbatim.
const NORMALIZED_TO_ENUM: &[&str] = &[
    "LogonType",
    "Protocol",
    "RegistryValueType",
    "ProcessIntegrityLevel",
    "InitiatingProcessIntegrityLevel",
    "direction",
    "DnsQueryType",
    "Severity",
    "EmailDirection",
    "ActivityType",
    "OSArchitecture",
    "NetworkAdapterType",
    "AttackTechniques",
];

/// Collects every leaf of `v`: strings as they are, numbers as their decimal text.
fn leaves(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Number(n) => {
            out.insert(n.to_string());
        }
        Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
        Value::Object(o) => o.values().for_each(|x| leaves(x, out)),
        _ => {}
    }
}

/// Checks that `row`'s value of `col` survives in `event` (see [`no_column_is_dropped`]).
/// `top`: a column of the row (JSON-in-string columns are decoded); values nested inside a
/// decoded column stay as written (nested JSON-in-string included).
fn check_kept(col: &str, val: &Value, event: &Value, seen: &HashSet<String>, ctx: &str, top: bool) {
    let unmapped = &event["unmapped"];
    match val {
        Value::Null => assert!(
            unmapped.get(col).is_some() || col_in_additional(unmapped, col),
            "{ctx}: null column {col} not kept under unmapped"
        ),
        Value::String(s) if s.is_empty() => assert!(
            unmapped.get(col).is_some()
                || col_in_additional(unmapped, col)
                || event.pointer("/reg_value/is_default") == Some(&Value::Bool(true)),
            "{ctx}: empty column {col} not kept under unmapped"
        ),
        _ if NORMALIZED_TO_ENUM.contains(&col) => {}
        Value::String(s) => {
            // Timestamps become milliseconds since the epoch.
            if s.len() >= 19 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' {
                return;
            }
            // JSON text: a JSON-in-string column is decoded; nested JSON text is kept as
            // written, or decoded where the mapping read it (DnsQueryResult).
            if top || !seen.contains(s) {
                if let Ok(inner) = serde_json::from_str::<Value>(s) {
                    if inner.is_object() || inner.is_array() {
                        // A JSON-in-string column: what it holds must survive.
                        return check_kept(col, &inner, event, seen, ctx, false);
                    }
                }
            }
            assert!(seen.contains(s), "{ctx}: value of {col} ({s:?}) lost");
        }
        Value::Number(n) => assert!(
            seen.contains(&n.to_string()),
            "{ctx}: value of {col} ({n}) lost"
        ),
        Value::Bool(_) => {}
        Value::Object(o) => {
            for (k, v) in o {
                check_kept(k, v, event, seen, &format!("{ctx} {col}"), false);
            }
        }
        Value::Array(a) => {
            for v in a.iter().filter(|v| !v.is_null()) {
                check_kept(col, v, event, seen, ctx, false);
            }
        }
    }
}

fn col_in_additional(unmapped: &Value, col: &str) -> bool {
    unmapped["AdditionalFields"].get(col).is_some()
}

/// No column is dropped: every value of every input row is somewhere in its event (placed, or
/// under `unmapped`), except enum columns normalized to OCSF captions and timestamps turned into
/// epoch milliseconds; null and empty columns are kept under `unmapped`.
#[test]
fn no_column_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = vec![repo().join("tests/fixtures/ocsf/external-shapes.json")];
    for table in written_tables() {
        let p = dir.path().join(format!("{table}.json"));
        let out = Command::new(BIN)
            .args([
                "gen", "--table", table, "--seed", "3", "--rows", "60", "--out",
            ])
            .arg(&p)
            .output()
            .unwrap();
        assert!(out.status.success());
        inputs.push(p);
    }
    for input in inputs {
        let rows: Vec<Value> = std::fs::read_to_string(&input)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let events = lines(&process_ocsf(&input));
        assert_eq!(rows.len(), events.len());
        for (i, (row, event)) in rows.iter().zip(&events).enumerate() {
            let mut seen = HashSet::new();
            leaves(event, &mut seen);
            let ctx = format!("{} row {}", input.display(), i + 1);
            for (col, val) in row["properties"].as_object().unwrap() {
                check_kept(col, val, event, &seen, &ctx, true);
            }
        }
    }
}

/// The validator is not vacuous: events with the faults this mapping could make are refused.
#[test]
fn validator_rejects_invalid_events() {
    let good = serde_json::json!({
        "class_uid": 1007, "category_uid": 1, "activity_id": 1, "type_uid": 100701,
        "severity_id": 1, "time": 1_700_000_000_000i64,
        "metadata": {"version": "1.5.0", "product": {"name": "p", "vendor_name": "v"}, "profiles": ["host"]},
        "actor": {"process": {"pid": 1}}, "process": {"pid": 2}, "device": {"type_id": 0, "hostname": "h"},
    });
    let mut bad: Vec<(&str, Value)> = Vec::new();
    let mut no_actor = good.clone();
    no_actor.as_object_mut().unwrap().remove("actor");
    bad.push(("Process Activity without actor", no_actor));
    let mut extra = good.clone();
    extra["table"] = "DeviceProcessEvents".into();
    bad.push(("undefined top-level attribute", extra));
    let mut nested = good.clone();
    nested["process"]["colour"] = "red".into();
    bad.push(("undefined nested attribute", nested));
    let mut type_uid = good.clone();
    type_uid["type_uid"] = 100702.into();
    bad.push(("type_uid inconsistent with activity", type_uid));
    let mut empty_actor = good.clone();
    empty_actor["actor"] = serde_json::json!({});
    bad.push((
        "actor without any of its at_least_one attributes",
        empty_actor,
    ));
    let mut caption = good.clone();
    caption["activity_name"] = "Terminate".into();
    bad.push(("activity caption not matching activity_id", caption));
    let mut file = good.clone();
    file["process"]["file"] = serde_json::json!({"path": "/bin/x"});
    bad.push(("file without name and type_id", file));
    let mut no_profile = serde_json::json!({
        "class_uid": 0, "category_uid": 0, "activity_id": 0, "type_uid": 0, "severity_id": 1,
        "time": 1, "metadata": {"version": "1.5.0", "product": {"name": "p"}},
        "device": {"type_id": 0, "uid": "d"},
    });
    bad.push(("device without the host profile listed", no_profile.clone()));
    no_profile["metadata"]["profiles"] = serde_json::json!(["host"]);
    let reg = serde_json::json!({
        "class_uid": 201002, "category_uid": 1, "activity_id": 2, "type_uid": 20100202,
        "severity_id": 1, "time": 1, "metadata": {"version": "1.5.0", "product": {"name": "p"}},
        "actor": {"process": {"pid": 1}}, "device": {"type_id": 0, "uid": "d"},
        "reg_value": {"path": "HKLM\\x"},
    });
    bad.push(("registry value without name", reg.clone()));
    let mut reg_type = reg.clone();
    reg_type["reg_value"] =
        serde_json::json!({"path": "HKLM\\x", "name": "n", "type_id": 10, "type": "String"});
    bad.push(("registry value type caption not matching type_id", reg_type));
    let mut name_only = good.clone();
    name_only["process"] = serde_json::json!({"name": "x.exe", "cmd_line": "x"});
    bad.push(("process with neither pid, uid nor cpid", name_only));
    let mut product = good.clone();
    product["process"]["file"] =
        serde_json::json!({"name": "x", "type_id": 1, "product": {"version": "1.0"}});
    bad.push((
        "product without name or uid (inherited constraint)",
        product,
    ));
    let mut no_device_id = good.clone();
    no_device_id["device"] = serde_json::json!({"type_id": 0});
    bad.push(("device without any identifier", no_device_id));
    let mut big_pid = good.clone();
    big_pid["process"]["pid"] = serde_json::json!(9_223_372_036_854_775_808u64);
    bad.push(("pid above 2^63 - 1", big_pid));
    let mut bool_pid = good.clone();
    bool_pid["process"]["pid"] = true.into();
    bad.push(("pid a boolean", bool_pid));
    let net = serde_json::json!({
        "class_uid": 4001, "category_uid": 4, "activity_id": 6, "type_uid": 400106,
        "severity_id": 1, "time": 1, "metadata": {"version": "1.5.0", "product": {"name": "p"}},
        "src_endpoint": {"ip": "10.0.0.1", "port": 443},
    });
    let mut port = net.clone();
    port["src_endpoint"]["port"] = (-1).into();
    bad.push(("port -1", port));
    let mut port = net.clone();
    port["src_endpoint"]["port"] = 65536.into();
    bad.push(("port 65536", port));
    let mut dash = net.clone();
    dash["src_endpoint"]["ip"] = "-".into();
    bad.push(("ip a placeholder", dash));
    let mut no_ep = net.clone();
    no_ep["src_endpoint"] = serde_json::json!({"port": 443});
    bad.push(("network endpoint with only a port", no_ep));
    let mut no_side = net.clone();
    no_side.as_object_mut().unwrap().remove("src_endpoint");
    bad.push(("network activity without src or dst endpoint", no_side));
    let mut version = good.clone();
    version["metadata"]["version"] = "1.1.0".into();
    bad.push(("another OCSF version", version));

    let mut ndjson = Vec::new();
    for e in [&good, &no_profile, &net] {
        ndjson.extend_from_slice(e.to_string().as_bytes());
        ndjson.push(b'\n');
    }
    for (_, e) in &bad {
        ndjson.extend_from_slice(e.to_string().as_bytes());
        ndjson.push(b'\n');
    }
    let s = validate(&ndjson);
    let rejected: Vec<u64> = s
        .errors
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    for (i, (what, _)) in bad.iter().enumerate() {
        assert!(
            rejected.contains(&(i as u64 + 4)),
            "the validator accepted an event with: {what}\n{:#?}",
            s.errors
        );
    }
    assert!(
        !rejected.contains(&1) && !rejected.contains(&2) && !rejected.contains(&3),
        "the validator refused a valid event: {:#?}",
        s.errors
    );
}
