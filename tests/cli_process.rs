//! End-to-end tests of `mde-relay process`: the real binary over hand-written fixtures in
//! `tests/fixtures/` (one file per group of quirks from platform facts §1) and the shipped
//! `demo/` tree.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mde-relay");
const T1: &str = "6f2a1c3e-8b4d-4e5f-9a7b-0c1d2e3f4a5b";
const T2: &str = "d4c3b2a1-0f9e-4d8c-b7a6-958473625140";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Runs the binary in `dir` (so default output paths land there).
fn run_in<I, S>(dir: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run mde-relay")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `process` with `args` in a fresh directory, asserting success; returns the events
/// (stdout) and the directory.
fn process_ok(args: &[&OsStr]) -> (Vec<Value>, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<&OsStr> = vec![OsStr::new("process")];
    all.extend_from_slice(args);
    let out = run_in(dir.path(), &all);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        stderr(&out)
    );
    let events = parse_ndjson(&out.stdout);
    (events, out.stdout, dir)
}

fn parse_ndjson(data: &[u8]) -> Vec<Value> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "output line is not JSON ({e}): {}",
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

/// The non-blank lines of a file with their offsets, as the export defines them (LF or CRLF,
/// a BOM at offset 0 skipped, a last line without terminator included).
fn lines_of(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut start = 0usize;
    if data.starts_with(b"\xEF\xBB\xBF") {
        start = 3;
    }
    while start < data.len() {
        let end = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| start + i);
        let mut line = &data[start..end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if !line.iter().all(|b| b.is_ascii_whitespace()) {
            out.push((start as u64, line.to_vec()));
        }
        start = end + 1;
    }
    out
}

fn table_of_line(line: &[u8]) -> String {
    let v: Value = serde_json::from_slice(line).unwrap();
    v["category"]
        .as_str()
        .unwrap()
        .trim_start_matches("AdvancedHunting-")
        .to_string()
}

fn arg(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Counters from the stderr summary line.
fn summary(err: &str) -> BTreeMap<&'static str, u64> {
    let line = err
        .lines()
        .find(|l| l.starts_with("processed "))
        .unwrap_or_else(|| panic!("no summary in stderr: {err}"));
    let mut m = BTreeMap::new();
    for key in ["rows", "events", "dead-lettered", "skipped"] {
        let at = line
            .find(&format!(" {key}"))
            .unwrap_or_else(|| panic!("no `{key}` in {line}"));
        let num = line[..at].rsplit([' ', ',']).next().unwrap();
        m.insert(key, num.parse().unwrap());
    }
    m
}

const VALID: [&str; 4] = [
    "quirks/crlf-bom.json",
    "quirks/lf-no-final-newline.json",
    "quirks/types.json",
    "quirks/redelivery.json",
];

#[test]
fn every_valid_row_becomes_exactly_one_event_of_its_table_at_its_offset() {
    for rel in VALID {
        let path = fixture(rel);
        let expected = lines_of(&path);
        let (events, _, dir) = process_ok(&[path.as_os_str()]);
        assert_eq!(events.len(), expected.len(), "{rel}");
        let name = path.file_name().unwrap().to_str().unwrap();
        for ((offset, line), ev) in expected.iter().zip(&events) {
            assert_eq!(ev["schema"], "mde-relay/v1");
            assert_eq!(ev["table"], table_of_line(line), "{rel} @{offset}");
            assert_eq!(ev["source"]["offset"], *offset, "{rel}");
            assert_eq!(ev["source"]["blob"], name);
            let id = ev["id"].as_str().unwrap();
            assert!(
                id.len() == 32
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            let ts = ev["timestamp"].as_str().unwrap();
            assert!(ts.starts_with("2026-11-24T") && ts.ends_with('Z'), "{ts}");
            assert!(ev["properties"].is_object());
        }
        // Nothing was dead-lettered, so no dead-letter file appears.
        assert!(!dir.path().join("mde-relay-deadletter.ndjson").exists());
    }
}

#[test]
fn bom_crlf_and_blank_lines() {
    let path = fixture("quirks/crlf-bom.json");
    let raw = std::fs::read(&path).unwrap();
    assert!(raw.starts_with(b"\xEF\xBB\xBF{"));
    assert!(
        raw.windows(4).any(|w| w == b"\r\n\r\n"),
        "fixture has a blank line"
    );
    let (events, out, _dir) = process_ok(&[path.as_os_str()]);
    assert_eq!(events.len(), 3);
    // The row after the BOM starts at offset 3 and parses; no CR leaks into any value.
    assert_eq!(events[0]["source"]["offset"], 3);
    assert!(!out.contains(&b'\r'));
    assert_eq!(
        events[0]["properties"]["ProcessCommandLine"],
        "powershell.exe -NoProfile -File \"C:\\Users\\jürgen.müller\\Skripte\\Prüfung.ps1\""
    );
    assert_eq!(events[1]["properties"]["FileName"], "会議メモ 📝.docx");
    assert_eq!(
        events[1]["properties"]["AdditionalFields"]["FileType"],
        "Docx"
    );
    assert_eq!(
        events[2]["properties"]["AdditionalFields"],
        serde_json::json!([])
    );
    // 0, 1 and 7 fractional digits all normalize.
    assert_eq!(events[2]["timestamp"], "2026-11-24T09:01:14Z");
    assert_eq!(events[1]["timestamp"], "2026-11-24T09:01:13.5Z");
    assert_eq!(events[0]["timestamp"], "2026-11-24T09:01:12.4410092Z");
}

#[test]
fn lf_varying_key_order_and_a_last_line_without_terminator() {
    let path = fixture("quirks/lf-no-final-newline.json");
    let raw = std::fs::read(&path).unwrap();
    assert!(!raw.contains(&b'\r') && !raw.ends_with(b"\n"));
    let (events, _, _dir) = process_ok(&[path.as_os_str()]);
    let tables: Vec<&str> = events
        .iter()
        .map(|e| e["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        [
            "DeviceRegistryEvents",
            "DeviceLogonEvents",
            "DeviceImageLoadEvents"
        ]
    );
    for e in &events {
        assert_eq!(e["tenant_id"], T1);
        assert_eq!(e["machine_group"], "Server – Frankfurt");
    }
    // Older rows without _TimeReceivedBySvc: received_at is null.
    assert_eq!(events[0]["received_at"], Value::Null);
    assert_eq!(events[1]["received_at"], "2026-11-24T09:05:58.1000000Z");
    assert_eq!(events[2]["exported_at"], "2026-11-24T09:06:00.0000003Z");
    assert_eq!(
        events[0]["properties"]["RegistryKey"],
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Übersetzer"
    );
}

#[test]
fn type_quirks_are_normalized() {
    let path = fixture("quirks/types.json");
    let (ev, out, _dir) = process_ok(&[path.as_os_str()]);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(ev.len(), 10);
    let by_table = |t: &str| -> Vec<&Value> { ev.iter().filter(|e| e["table"] == t).collect() };

    // JSON-in-string AdditionalFields becomes an object; the nested JSON-in-string stays a
    // string.
    let dne = by_table("DeviceNetworkEvents");
    let af = &dne[0]["properties"]["AdditionalFields"];
    assert_eq!(af["query"], "münchen.example");
    assert_eq!(af["answers"], "[\"192.0.2.10\"]");
    assert_eq!(af["TTLs"], "[300.0]");
    // A native-object AdditionalFields passes through as the same object.
    assert_eq!(
        dne[1]["properties"]["AdditionalFields"],
        serde_json::json!({"direction":"Out","server_name":"xn--bcher-kva.example","established":"true"})
    );

    // ReportIds above 2^53 survive digit for digit, in the properties and the pivot.
    for digits in [
        "639199803770463703",
        "639199916335081329",
        "9007199254740993",
    ] {
        assert!(
            text.contains(&format!("\"report_id\":{digits},")),
            "{digits}"
        );
        assert!(
            text.contains(&format!("\"ReportId\":{digits},")),
            "{digits}"
        );
    }
    // An integer beyond u64 on an unknown table too.
    assert!(text.contains("\"Count\":123456789012345678901234,"));

    // DeviceInfo: LoggedOnUsers array, booleans as 1/"true"/""/0 kept, MachineGroup null.
    let info = by_table("DeviceInfo")[0];
    let p = &info["properties"];
    assert_eq!(p["LoggedOnUsers"][0]["UserName"], "田中太郎");
    assert_eq!(p["IsAzureADJoined"], 1);
    assert_eq!(p["IsExcluded"], "true");
    assert_eq!(p["IsInternetFacing"], "");
    assert_eq!(p["IsTransient"], 0);
    assert_eq!(info["machine_group"], Value::Null);
    assert_eq!(info["device_name"], "büro-laptop-07.contoso.local");

    // DeviceNetworkInfo: arrays decoded, "" and null kept.
    let ni = &by_table("DeviceNetworkInfo")[0]["properties"];
    assert_eq!(ni["IPAddresses"][0]["SubnetPrefix"], 24);
    assert_eq!(ni["DnsAddresses"], serde_json::json!([]));
    assert_eq!(ni["ConnectedNetworks"], "");
    assert_eq!(ni["DefaultGateways"], Value::Null);
    assert_eq!(
        by_table("DeviceNetworkInfo")[0]["machine_group"],
        "UnassignedGroup"
    );

    // EmailEvents: string ReportId, received time without Z gets one, native To/Cc.
    let email = by_table("EmailEvents")[0];
    assert_eq!(
        email["report_id"],
        "3c7b1317-ac21-4754-9a76-08dee4d61558-4061291175951672650-1"
    );
    assert_eq!(email["received_at"], "2026-11-24T09:07:44.1230000Z");
    let p = &email["properties"];
    assert_eq!(p["AuthenticationDetails"]["DMARC"], "pass");
    assert_eq!(p["To"], serde_json::json!(["zoë.dubois@contoso.de"]));
    assert_eq!(p["Cc"], serde_json::json!([]));
    assert_eq!(p["Subject"], "Ihre Rechnung über 4.711 € – bitte prüfen 🧾");
    assert_eq!(p["IsFirstContact"], "");

    // Mis-decoded text kept as is; a dynamic column that is not JSON stays a string.
    let logon = &by_table("DeviceLogonEvents")[0]["properties"];
    assert_eq!(logon["AccountName"], "Ã¶zlem.yÄ±lmaz");
    assert_eq!(logon["AdditionalFields"], "not json {");
    assert_eq!(logon["IsLocalAdmin"], 0);

    let cert = by_table("DeviceFileCertificateInfo")[0];
    assert_eq!(cert["tenant_id"], T2);
    let p = &cert["properties"];
    assert_eq!(
        p["CrlDistributionPointUrls"],
        serde_json::json!(["http://crl.example/ca.crl"])
    );
    assert_eq!(
        (&p["IsSigned"], &p["IsTrusted"], &p["IsRootSignerMicrosoft"]),
        (&Value::Bool(true), &Value::from("true"), &Value::from(""))
    );
    assert_eq!(p["Signer"], "北京示例科技有限公司");

    // AlertEvidence: Categories array, empty AttackTechniques kept, nested object decoded.
    let ae = &by_table("AlertEvidence")[0];
    assert_eq!(
        ae["properties"]["Categories"],
        serde_json::json!(["InitialAccess"])
    );
    assert_eq!(ae["properties"]["AttackTechniques"], "");
    assert_eq!(
        ae["properties"]["AdditionalFields"]["Location"]["City"],
        "Köln"
    );
    assert_eq!(ae["received_at"], Value::Null);

    // An unknown table is forwarded untouched except AdditionalFields, a JSON column in every
    // table (docs/schema.md).
    let unknown = by_table("BrandNewTable")[0];
    assert_eq!(
        unknown["properties"]["AdditionalFields"],
        serde_json::json!({"a": 1})
    );
    assert_eq!(
        unknown["properties"]["Nested"],
        serde_json::json!({"k":[1,2.5,"drei"]})
    );
    assert!(
        text.contains("\"Nested\":{\"k\":[1,2.50,\"drei\"]}"),
        "number text kept"
    );
    assert_eq!(unknown["properties"]["Widget"], "Zähler");

    // Unknown columns on a known table are kept as written.
    let dpe = &by_table("DeviceProcessEvents")[0]["properties"];
    assert_eq!(dpe["FutureColumn"], serde_json::json!({"nested":[1,2,3]}));
    assert_eq!(dpe["FutureJsonText"], "{\"x\":1}");
}

#[test]
fn invalid_rows_are_dead_lettered_with_location_and_the_rest_comes_out() {
    let path = fixture("invalid/mixed.json");
    let lines = lines_of(&path);
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("events.ndjson");
    let out = run_in(
        dir.path(),
        [
            arg("process"),
            arg("--max-row-bytes"),
            arg("4KiB"),
            arg("--out"),
            out_file.as_os_str(),
            path.as_os_str(),
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(out.stdout.is_empty());
    let counts = summary(&err);
    let events = parse_ndjson(&std::fs::read(&out_file).unwrap());
    // The four good DeviceEvents rows come out, in order.
    let reports: Vec<u64> = events
        .iter()
        .map(|e| e["report_id"].as_u64().unwrap())
        .collect();
    assert_eq!(reports, [101, 102, 103, 104]);
    // Default dead-letter path: <out>.deadletter.ndjson.
    let dl_path = dir.path().join("events.ndjson.deadletter.ndjson");
    let dead = parse_ndjson(&std::fs::read(&dl_path).unwrap());
    assert!(err.contains("events.ndjson.deadletter.ndjson"), "{err}");
    assert_eq!(counts["events"], 4);
    assert_eq!(counts["dead-lettered"], dead.len() as u64);
    assert_eq!(counts["rows"], lines.len() as u64);
    assert_eq!(dead.len(), lines.len() - 4);

    // Every dead letter names the file, the offset of its line and keeps the original bytes.
    let by_offset: HashMap<u64, &Vec<u8>> = lines.iter().map(|(o, l)| (*o, l)).collect();
    for d in &dead {
        assert_eq!(d["blob"], "mixed.json");
        let offset = d["offset"].as_u64().unwrap();
        let line = by_offset[&offset];
        assert_eq!(d["length"].as_u64().unwrap(), line.len() as u64);
        assert!(!d["reason"].as_str().unwrap().is_empty());
        let kept = match (&d["original"], &d["original_base64"]) {
            (Value::String(s), _) => s.as_bytes().to_vec(),
            (_, Value::String(b)) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(b).unwrap()
            }
            other => panic!("no original bytes: {other:?}"),
        };
        if d["truncated"] == true {
            assert!(line.starts_with(&kept) && kept.len() < line.len());
        } else {
            assert_eq!(&kept, line);
        }
    }
    let reason_at = |offset: u64| -> String {
        let d = dead
            .iter()
            .find(|d| d["offset"] == offset)
            .unwrap_or_else(|| panic!("line at {offset} not dead-lettered"));
        d["reason"].as_str().unwrap().to_string()
    };
    let reason_of = |needle: &[u8]| -> String {
        let (offset, _) = lines
            .iter()
            .find(|(_, l)| l.windows(needle.len()).any(|w| w == needle))
            .unwrap_or_else(|| panic!("fixture lacks {}", String::from_utf8_lossy(needle)));
        reason_at(*offset)
    };
    assert!(reason_of(b"this is not json").contains("not valid JSON"));
    assert!(reason_of(b"[{\"category\"").contains("not an object"));
    assert!(
        reason_of(b"\"properties\":{\"Timestamp\":\"2026-11-24T09:05:00Z\"}}").contains("category")
    );
    let no_props = format!("{T1}\",\"category\":\"AdvancedHunting-DeviceEvents\"}}");
    assert!(reason_of(no_props.as_bytes()).contains("properties"));
    assert!(reason_of(b"wks-\xff\xfe").contains("UTF-8"));
    assert!(reason_of(b"\"ReportId\":\"1\",},}").contains("not valid JSON"));
    assert!(reason_of(b"AAAAAAAAAA").contains("longer than the maximum"));
    // A pretty-printed document: its first line says why; every line of it is dead-lettered.
    let pretty_start = lines.iter().position(|(_, l)| l == b"{").unwrap();
    let first = reason_at(lines[pretty_start].0);
    assert!(first.contains("pretty-printed"), "{first}");
    let pretty_end = lines.iter().position(|(_, l)| l == b"}").unwrap();
    for (offset, _) in &lines[pretty_start..=pretty_end] {
        assert!(dead.iter().any(|d| d["offset"] == *offset));
    }
    // The invalid UTF-8 row is kept as base64.
    let utf8 = dead
        .iter()
        .find(|d| d["reason"].as_str().unwrap().contains("UTF-8"))
        .unwrap();
    assert!(utf8["original"].is_null() && utf8["original_base64"].is_string());
    // The over-long row: truncated prefix and full length.
    let long = dead
        .iter()
        .find(|d| d["reason"].as_str().unwrap().contains("longer"))
        .unwrap();
    assert_eq!(long["truncated"], true);
    assert!(long["length"].as_u64().unwrap() > 6000);
}

#[test]
fn a_rerun_with_out_file_replaces_output_and_dead_letters() {
    let path = fixture("invalid/mixed.json");
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("events.ndjson");
    let dl = dir.path().join("events.ndjson.deadletter.ndjson");
    let mut counts = vec![];
    for _ in 0..2 {
        let out = run_in(
            dir.path(),
            [
                arg("process"),
                arg("--out"),
                out_file.as_os_str(),
                path.as_os_str(),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        counts.push((
            parse_ndjson(&std::fs::read(&out_file).unwrap()).len(),
            parse_ndjson(&std::fs::read(&dl).unwrap()).len(),
        ));
    }
    assert_eq!(
        counts[0], counts[1],
        "a second run must not append to the first"
    );
    assert!(counts[0].1 > 0);
}

#[test]
fn stdout_run_puts_dead_letters_in_the_working_directory() {
    let path = fixture("invalid/mixed.json");
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), [arg("process"), path.as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        parse_ndjson(&out.stdout).len(),
        5,
        "four good rows and the long one"
    );
    let dl = dir.path().join("mde-relay-deadletter.ndjson");
    assert!(dl.exists(), "{}", stderr(&out));
    assert!(stderr(&out).contains("mde-relay-deadletter.ndjson"));
    // An explicit --dead-letter wins.
    let custom = dir.path().join("custom-dl.ndjson");
    let out = run_in(
        dir.path(),
        [
            arg("process"),
            arg("--dead-letter"),
            custom.as_os_str(),
            path.as_os_str(),
        ],
    );
    assert!(out.status.success());
    assert!(!parse_ndjson(&std::fs::read(&custom).unwrap()).is_empty());
}

#[test]
fn ids_are_stable_across_runs_and_re_deliveries_and_distinct_otherwise() {
    let paths: Vec<PathBuf> = VALID.iter().map(|r| fixture(r)).collect();
    let args: Vec<&OsStr> = paths.iter().map(|p| p.as_os_str()).collect();
    let (a, a_bytes, _d1) = process_ok(&args);
    let (_, b_bytes, _d2) = process_ok(&args);
    assert_eq!(a_bytes, b_bytes, "two runs give identical output");

    let red = fixture("quirks/redelivery.json");
    let (ev, _, _d3) = process_ok(&[red.as_os_str()]);
    let ids: Vec<&str> = ev.iter().map(|e| e["id"].as_str().unwrap()).collect();
    // Rows 0 and 2 differ only in `time` (and _TimeReceivedBySvc): same id.
    assert_eq!(ids[0], ids[2]);
    assert_ne!(ev[0]["exported_at"], ev[2]["exported_at"]);
    // A different ReportId, a different Timestamp, a different tenant: different ids.
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[3]);
    assert_ne!(ids[0], ids[4]);
    assert_eq!(ev[4]["tenant_id"], T2);

    // Across every fixture row, only the re-delivery shares an id.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in &a {
        *seen.entry(e["id"].as_str().unwrap()).or_default() += 1;
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert_eq!(dupes, vec![(&ids[0], &2)]);
}

#[test]
fn allow_lists_skip_rows_and_the_summary_counts_them() {
    let path = fixture("quirks/types.json");
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        [
            arg("process"),
            arg("--tables"),
            arg("DeviceInfo,emailevents"),
            path.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ev = parse_ndjson(&out.stdout);
    let tables: Vec<&str> = ev.iter().map(|e| e["table"].as_str().unwrap()).collect();
    assert_eq!(tables, ["DeviceInfo", "EmailEvents"]);
    let c = summary(&stderr(&out));
    assert_eq!(
        (c["rows"], c["events"], c["skipped"], c["dead-lettered"]),
        (10, 2, 8, 0)
    );

    let out = run_in(
        dir.path(),
        [
            arg("process"),
            arg("--tenants"),
            arg(&T2.to_uppercase()),
            path.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ev = parse_ndjson(&out.stdout);
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e["tenant_id"] == T2));
    let c = summary(&stderr(&out));
    assert_eq!((c["events"], c["skipped"]), (2, 8));
}

#[test]
fn raw_format_keeps_the_original_row() {
    let path = fixture("quirks/types.json");
    let lines = lines_of(&path);
    let (ev, out, _dir) = process_ok(&[arg("--format"), arg("raw"), path.as_os_str()]);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(ev.len(), lines.len());
    for ((offset, line), (e, out_line)) in lines.iter().zip(ev.iter().zip(text.lines())) {
        assert_eq!(e["source"]["offset"], *offset);
        assert_eq!(e["table"], table_of_line(line));
        // Every original member is there, unchanged (dynamic columns stay strings).
        let original: Value = serde_json::from_slice(line).unwrap();
        for (k, v) in original.as_object().unwrap() {
            assert_eq!(&e[k], v, "{k}");
        }
        // ... and byte for byte: the original row without its opening brace ends the event.
        let line = std::str::from_utf8(line).unwrap();
        assert!(out_line.ends_with(&line[1..]), "{out_line}");
    }
    // Same ids as the normalized format.
    let (norm, _, _d) = process_ok(&[path.as_os_str()]);
    for (r, n) in ev.iter().zip(&norm) {
        assert_eq!(r["id"], n["id"]);
    }
}

#[test]
fn a_missing_path_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-export");
    let out = run_in(dir.path(), [arg("process"), missing.as_os_str()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no-such-export"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_flags_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture("quirks/types.json");
    for (flags, needle) in [
        (vec!["--format", "yaml"], "yaml"),
        (vec!["--bogus-flag"], "--bogus-flag"),
        (vec!["--max-row-bytes", "lots"], "lots"),
        (vec!["--max-row-bytes", "0"], "--max-row-bytes"),
    ] {
        let mut args = vec![arg("process")];
        args.extend(flags.iter().map(|f| arg(f)));
        args.push(path.as_os_str());
        let out = run_in(dir.path(), &args);
        assert!(!out.status.success(), "{flags:?} succeeded");
        assert!(stderr(&out).contains(needle), "{flags:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{flags:?} wrote events");
    }
    let out = run_in(dir.path(), [arg("process")]);
    assert!(!out.status.success(), "no path given");
}

#[test]
fn the_demo_tree_processes_cleanly() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let files: Vec<PathBuf> = walk(&demo);
    assert!(files.len() >= 8);
    let rows: usize = files.iter().map(|f| lines_of(f).len()).sum();
    let (ev, _, dir) = process_ok(&[demo.as_os_str()]);
    assert_eq!(ev.len(), rows);
    assert!(!dir.path().join("mde-relay-deadletter.ndjson").exists());
    for f in &files {
        let rel = f.strip_prefix(&demo).unwrap().to_str().unwrap();
        assert!(
            rel.starts_with("insights-logs-advancedhunting-") && rel.ends_with("/m=00/PT1H.json"),
            "{rel}"
        );
        assert!(
            std::fs::read(f).unwrap().ends_with(b"}\r\n"),
            "{rel} is CRLF"
        );
    }
    // The re-delivered row (in the next hour's blob) shares its id with the original.
    let mut ids: HashMap<&str, Vec<&Value>> = HashMap::new();
    for e in &ev {
        ids.entry(e["id"].as_str().unwrap()).or_default().push(e);
    }
    let dupes: Vec<&Vec<&Value>> = ids.values().filter(|v| v.len() > 1).collect();
    assert_eq!(dupes.len(), 1);
    assert_ne!(dupes[0][0]["source"]["blob"], dupes[0][1]["source"]["blob"]);
    // The quirks the demo shows.
    assert!(ev
        .iter()
        .any(|e| e["table"] == "DeviceNetworkEvents"
            && e["properties"]["AdditionalFields"].is_object()));
    assert!(ev.iter().any(|e| e["table"] == "EmailEvents"));
    assert!(ev
        .iter()
        .any(|e| e["report_id"].as_u64().is_some_and(|r| r > 1 << 53)));
}

/// The README's first command ends with lines that fit a terminal: the schema drift is counted
/// on one line, and listed one entry per line only with `--drift-report`.
#[test]
fn the_demo_summary_fits_a_terminal_and_the_drift_list_is_on_request() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), [arg("process"), demo.as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for line in err.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} characters: {line}",
            line.len()
        );
    }
    let drift: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("schema drift:"))
        .collect();
    assert_eq!(drift.len(), 1, "{err}");
    assert!(
        drift[0].contains("undocumented columns in")
            && drift[0].ends_with("(--drift-report for the list)"),
        "{err}"
    );
    assert!(
        !err.contains("CloudAppEvents"),
        "no list without the flag: {err}"
    );

    let out = run_in(
        dir.path(),
        [arg("process"), arg("--drift-report"), demo.as_os_str()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let entries: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(": undocumented column "))
        .collect();
    let count: usize = drift[0]
        .trim_start_matches("schema drift: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(entries.len(), count, "one line per counted column: {err}");
    assert!(
        err.contains("  CloudAppEvents: undocumented column ISP ("),
        "{err}"
    );
    for line in err.lines() {
        assert!(line.chars().count() <= 100, "{line}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
