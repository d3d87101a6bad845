//! End-to-end tests of the schema-aware registry with the real binary: JSON columns decoded per
//! table family (hand-written fixtures in `tests/fixtures/schema/`), schema drift reported by
//! `process`, and `mde-relay schema` against the project's data file
//! (`data/advanced-hunting-schema.json`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mde-relay");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/schema").join(name)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run mde-relay")
}

fn ndjson(data: &[u8]) -> Vec<Value> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("output line is JSON"))
        .collect()
}

/// Runs `process FILE` and returns (input rows, events, stderr).
fn process(file: &Path) -> (Vec<Value>, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["process", "--drift-report", file.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        !dir.path().join("mde-relay-deadletter.ndjson").exists(),
        "nothing dead-lettered: {err}"
    );
    let input = ndjson(&std::fs::read(file).unwrap());
    (input, ndjson(&out.stdout), err)
}

/// Asserts every property of `row` reached `event` unchanged, except `decoded` columns, which
/// must hold the JSON their text encodes.
fn assert_properties(row: &Value, event: &Value, decoded: &[&str]) {
    let table = event["table"].as_str().unwrap();
    let props = row["properties"].as_object().unwrap();
    let out = event["properties"].as_object().unwrap();
    assert_eq!(props.len(), out.len(), "{table}: same columns");
    for (k, v) in props {
        if decoded.contains(&k.as_str()) {
            let text = v
                .as_str()
                .unwrap_or_else(|| panic!("{table}.{k} is JSON text"));
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(out[k], want, "{table}.{k} decoded");
            assert!(want.is_object() || want.is_array());
        } else {
            assert_eq!(&out[k], v, "{table}.{k} unchanged");
        }
    }
}

#[test]
fn every_table_family_gets_its_json_columns_decoded_and_nothing_else() {
    let (input, events, err) = process(&fixture("families.json"));
    assert_eq!(events.len(), input.len());
    let want: &[(&str, &[&str])] = &[
        // Device*: documented `string`, JSON text on the wire; a command line that looks like
        // JSON stays text.
        ("DeviceEvents", &["AdditionalFields"]),
        ("DeviceNetworkInfo", &["IPAddresses", "DnsAddresses"]),
        ("AlertInfo", &["AttackTechniques", "Categories"]),
        (
            "BehaviorInfo",
            &[
                "Categories",
                "AttackTechniques",
                "DataSources",
                "AdditionalFields",
            ],
        ),
        // Identity*: AdditionalFields typed dynamic; empty ports stay "".
        ("IdentityLogonEvents", &["AdditionalFields"]),
        ("IdentityInfo", &["Tags"]),
        // Cloud*: dynamic RawEventData as JSON text; ActivityObjects already native.
        ("CloudAppEvents", &["RawEventData", "AdditionalFields"]),
        ("CloudAuditEvents", &["RawEventData", "AdditionalFields"]),
        // Email*: DetectionMethods and AuthenticationDetails; ConfidenceLevel is documented
        // `string` and not a known JSON column, so it stays text; so does a subject.
        (
            "EmailEvents",
            &["AuthenticationDetails", "DetectionMethods"],
        ),
        ("EmailAttachmentInfo", &["DetectionMethods"]),
        ("UrlClickEvents", &["UrlChain"]),
        ("MessageEvents", &["DetectionMethods"]),
        ("EntraIdSignInEvents", &[]),
        // A table that does not exist yet: AdditionalFields only.
        ("DeviceQuantumEvents", &["AdditionalFields"]),
    ];
    assert_eq!(want.len(), events.len());
    for ((row, event), (table, decoded)) in input.iter().zip(&events).zip(want) {
        assert_eq!(event["table"], *table);
        assert_properties(row, event, decoded);
    }
    // Values are never coerced to their documented types.
    let ident = &events[4]["properties"];
    assert_eq!(ident["Port"], "", "int column keeps its empty string");
    assert_eq!(events[0]["report_id"].to_string(), "639199803770463703");
    // The only drift: the unknown table and two columns the docs lack (decoded all the same).
    let lines: Vec<&str> = err.lines().collect();
    let drift = lines
        .iter()
        .position(|l| l.starts_with("schema drift:"))
        .unwrap();
    assert_eq!(
        &lines[drift..],
        [
            "schema drift: 2 undocumented columns in 2 tables, 1 unknown table:",
            "  AlertInfo: undocumented column Categories (1 row)",
            "  unknown table DeviceQuantumEvents (1 row)",
            "  IdentityInfo: undocumented column AdditionalFields (1 row)",
        ],
        "{err}"
    );
}

#[test]
fn drift_is_reported_after_the_summary_and_rows_are_unchanged() {
    let (input, events, err) = process(&fixture("drift.json"));
    // One event per row, values unchanged except JSON text that decodes.
    assert_eq!(events.len(), input.len());
    assert_properties(&input[0], &events[0], &[]);
    assert_properties(&input[1], &events[1], &[]);
    assert_properties(&input[2], &events[2], &["AdditionalFields"]);
    assert_properties(&input[3], &events[3], &[]);
    assert_eq!(events[1]["properties"]["AdditionalFields"], "{\"broken\":");
    assert_eq!(events[1]["properties"]["ProcessCommandLine"], "[1,2]");
    let lines: Vec<&str> = err.lines().collect();
    let summary = lines
        .iter()
        .position(|l| l.starts_with("processed 1 file(s): 4 rows, 4 events, 0 dead-lettered"))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        &lines[summary + 1..summary + 6],
        [
            "schema drift: 1 undocumented column in 1 table, 2 JSON columns not valid JSON, \
             1 unknown table:",
            "  DeviceProcessEvents: undocumented column ProcessUniqueId (2 rows)",
            "  DeviceProcessEvents: JSON column AdditionalFields not valid JSON (1 row)",
            "  unknown table FooEvents (2 rows)",
            "  FooEvents: JSON column AdditionalFields not valid JSON (1 row)",
        ],
        "{err}"
    );
    assert!(!err.contains("MachineGroup"), "{err}");
}

#[test]
fn clean_input_prints_no_drift_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("clean.json");
    std::fs::write(
        &f,
        "{\"time\":\"2026-11-24T09:05:01Z\",\"tenantId\":\"t\",\"category\":\"AdvancedHunting-DeviceEvents\",\"properties\":{\"Timestamp\":\"2026-11-24T09:01:12Z\",\"DeviceId\":\"d\",\"ActionType\":\"X\",\"AdditionalFields\":\"{\\\"a\\\":1}\",\"MachineGroup\":null}}\r\n",
    )
    .unwrap();
    let (_, events, err) = process(&f);
    assert_eq!(events[0]["properties"]["AdditionalFields"]["a"], 1);
    assert!(!err.contains("schema drift"), "{err}");
}

#[test]
fn schema_json_lists_every_table_column_and_type_of_the_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["schema", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let data: Value = serde_json::from_slice(
        &std::fs::read(root().join("data/advanced-hunting-schema.json")).unwrap(),
    )
    .unwrap();
    let want = data["tables"].as_object().unwrap();
    let tables = doc["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 66);
    assert_eq!(tables.len(), want.len());
    let mut columns = 0;
    for t in tables {
        let name = t["name"].as_str().unwrap();
        let cols = t["columns"].as_array().unwrap();
        let expected = want[name]["columns"].as_array().unwrap();
        assert_eq!(cols.len(), expected.len(), "{name}");
        for (c, e) in cols.iter().zip(expected) {
            assert_eq!(c["name"], e[0], "{name}");
            assert_eq!(c["type"], e[1], "{name}");
        }
        columns += cols.len();
        let json = t["json_columns"].as_array().unwrap();
        assert!(json.iter().any(|c| c == "AdditionalFields"), "{name}");
        // Every column typed dynamic is a JSON column.
        for e in expected.iter().filter(|e| e[1] == "dynamic") {
            assert!(json.contains(&e[0]), "{name}.{}", e[0]);
        }
        let listed = data["streaming_supported"][name] == "GA";
        assert_eq!(t["streams"], listed, "{name}");
    }
    assert_eq!(columns, 1620);
    let dpe = tables
        .iter()
        .find(|t| t["name"] == "DeviceProcessEvents")
        .unwrap();
    assert_eq!(dpe["streams"], true);
    assert_eq!(
        dpe["columns"][0],
        serde_json::json!({"name":"Timestamp","type":"datetime"})
    );
    assert_eq!(dpe["json_columns"], serde_json::json!(["AdditionalFields"]));
}

#[test]
fn schema_shows_one_table_and_refuses_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["schema", "emailevents"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("EmailEvents ("), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("AuthenticationDetails "))
        .unwrap();
    assert!(line.contains("string") && line.ends_with("yes"), "{line}");
    let line = text.lines().find(|l| l.starts_with("Subject ")).unwrap();
    assert!(!line.ends_with("yes"), "{line}");

    let out = run(
        dir.path(),
        &["schema", "DeviceProcessEvents", "--format", "json"],
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["tables"].as_array().unwrap().len(), 1);

    let out = run(dir.path(), &["schema"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("Device")).count(),
        TABLES_STARTING_WITH_DEVICE
    );
    assert!(text.contains("66 tables, 1620 columns"), "{text}");

    let out = run(dir.path(), &["schema", "FooEvents"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no table `FooEvents`"), "{err}");
}

/// Device* tables in the data file.
const TABLES_STARTING_WITH_DEVICE: usize = 25;
