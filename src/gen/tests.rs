use super::*;
use crate::event::{Batch, SourceRef};
use crate::normalize::{Format, Normalizer};
use crate::rows::{parse_row, RowParser};
use serde_json::Value;

fn gen(table: &str, seed: u64, rows: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let n = generate(table, seed, Limit::Rows(rows), &mut out).unwrap();
    assert_eq!(n, rows);
    out
}

/// Lines without their CRLF; asserts every line has one and there is no bare LF.
fn lines(data: &[u8]) -> Vec<&[u8]> {
    assert!(data.ends_with(b"\r\n"));
    let body = &data[..data.len() - 1];
    let v: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    for l in &v {
        assert!(l.ends_with(b"\r"), "line not CRLF-terminated");
    }
    v.into_iter().map(|l| &l[..l.len() - 1]).collect()
}

/// The event text for `line`.
fn event_text(line: &[u8], format: Format) -> String {
    let mut parser = RowParser::new();
    let row = parser.parse(line).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(line));
    });
    let mut b = Batch::new();
    let src = SourceRef {
        container: None,
        blob: "gen",
        offset: 0,
    };
    Normalizer::new(format).push(&row, line, src, &mut b);
    assert_eq!(b.len(), 1);
    String::from_utf8(b.event(0).to_vec()).unwrap()
}

fn normalize(line: &[u8], format: Format) -> Value {
    serde_json::from_str(&event_text(line, format)).unwrap()
}

/// Digits after `"ReportId":` when the value is a JSON number.
fn report_id_digits(line: &str) -> Option<&str> {
    let at = line.find("\"ReportId\":")? + "\"ReportId\":".len();
    let rest = &line[at..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[test]
fn kinds_match_the_supported_list_and_the_registry() {
    for (i, k) in Kind::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i);
        assert_eq!(Kind::from_name(k.name()), Some(*k));
        assert!(crate::tables::lookup(k.name()).is_some(), "{}", k.name());
    }
    assert_eq!(Kind::ALL.len(), SUPPORTED_TABLES.len());
    assert!(SUPPORTED_TABLES.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        Kind::from_name("deviceprocessevents"),
        Some(Kind::DeviceProcessEvents)
    );
}

#[test]
fn every_row_of_every_table_parses_and_normalizes() {
    assert_eq!(gen_tables().count(), crate::tables::TABLES.len());
    for table in gen_tables() {
        let rows = if SUPPORTED_TABLES.contains(&table) {
            400
        } else {
            60
        };
        let data = gen(table, 7, rows);
        let info = crate::tables::lookup(table).unwrap();
        let category = format!("AdvancedHunting-{table}");
        for line in lines(&data) {
            let row = parse_row(line).unwrap();
            assert_eq!(row.category, category);
            let input: Value = serde_json::from_slice(line).unwrap();
            let v = normalize(line, Format::Normalized);
            assert_eq!(v["table"], table);
            if info.documents("Timestamp") {
                assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
            } else {
                // Some TVM and exposure tables have no Timestamp column.
                assert!(v["timestamp"].is_null());
            }
            assert!(v["received_at"].as_str().unwrap().ends_with('Z'));
            assert_eq!(v["tenant_id"], input["tenantId"]);
            // JSON columns written as JSON-in-string come out as objects/arrays.
            for col in info.json_columns {
                if let Some(Value::String(text)) = input["properties"].get(*col) {
                    let out = &v["properties"][*col];
                    if text.starts_with('{') || text.starts_with('[') {
                        assert!(
                            out.is_object() || out.is_array(),
                            "{table}.{col} stayed a string: {text}"
                        );
                    } else {
                        assert_eq!(out, &Value::String(text.clone()));
                    }
                }
            }
            // Every column survives.
            let props = input["properties"].as_object().unwrap();
            assert_eq!(v["properties"].as_object().unwrap().len(), props.len());
            let raw = normalize(line, Format::Raw);
            assert_eq!(raw["id"], v["id"]);
            assert_eq!(raw["properties"], input["properties"]);
        }
    }
}

#[test]
fn rows_from_the_schema_follow_it_without_drift() {
    use crate::normalize::drift::Drift;
    use crate::tables::{table_from_category, TABLES};
    let mut drift = Drift::default();
    let mut decoded = 0;
    for info in TABLES
        .iter()
        .filter(|t| !SUPPORTED_TABLES.contains(&t.name))
    {
        for line in lines(&gen(info.name, 3, 30)) {
            let mut parser = RowParser::new();
            let row = parser.parse(line).unwrap();
            let (table, found) = table_from_category(&row.category);
            assert_eq!(found, Some(info));
            let mut b = Batch::new();
            let src = SourceRef {
                container: None,
                blob: "gen",
                offset: 0,
            };
            let undecoded = Normalizer::new(Format::Normalized)
                .push_table(&row, &table, found, line, src, &mut b);
            drift.observe(&table, found, &row, undecoded);
            let input: Value = serde_json::from_slice(line).unwrap();
            let props = input["properties"].as_object().unwrap();
            // Every documented column (plus MachineGroup on device-linked rows).
            let names: Vec<&str> = props.keys().map(String::as_str).collect();
            let mut want = info.sorted_columns.to_vec();
            if info.documents("DeviceId") && !info.documents("MachineGroup") {
                want.push("MachineGroup");
            }
            want.sort_unstable();
            assert_eq!(names, want, "{}", info.name);
            let v: Value = serde_json::from_slice(b.event(0)).unwrap();
            for col in info.json_columns {
                if let Some(Value::String(t)) = props.get(*col) {
                    if !t.is_empty() {
                        assert!(
                            v["properties"][*col].is_object() || v["properties"][*col].is_array()
                        );
                        decoded += 1;
                    }
                }
            }
        }
    }
    assert!(drift.is_empty(), "{:?}", drift.summary());
    assert!(decoded > 100, "{decoded}");
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    for table in ["DeviceProcessEvents", "AlertEvidence", "EmailEvents"] {
        let a = gen(table, 42, 200);
        assert_eq!(a, gen(table, 42, 200));
        assert_ne!(a, gen(table, 43, 200));
    }
    // One seed means one tenant across tables, and different devices per table.
    let a = gen("DeviceProcessEvents", 5, 1);
    let b = gen("DeviceNetworkEvents", 5, 1);
    let (va, vb): (Value, Value) = (
        serde_json::from_slice(&a).unwrap(),
        serde_json::from_slice(&b).unwrap(),
    );
    assert_eq!(va["tenantId"], vb["tenantId"]);
}

#[test]
fn device_tables_carry_report_ids_above_2_pow_53_exactly() {
    for &table in SUPPORTED_TABLES.iter().filter(|t| t.starts_with("Device")) {
        let data = gen(table, 1, 300);
        let mut big = 0;
        for line in lines(&data) {
            let text = std::str::from_utf8(line).unwrap();
            let digits = report_id_digits(text).expect("integer ReportId on Device rows");
            let id: u64 = digits.parse().unwrap();
            if id > 1 << 53 {
                big += 1;
                let v = normalize(line, Format::Normalized);
                // The output text, not a Value: the digits themselves must survive.
                let out = event_text(line, Format::Normalized);
                assert!(out.contains(&format!("\"report_id\":{digits},")), "{out}");
                assert!(out.contains(&format!("\"ReportId\":{digits},")), "{out}");
                assert_eq!(v["report_id"].as_u64(), Some(id));
            }
        }
        assert!(big > 0, "{table}: no ReportId above 2^53 in 300 rows");
    }
    // Other tables carry string ReportIds.
    for table in ["EmailEvents", "CloudAppEvents", "IdentityLogonEvents"] {
        let data = gen(table, 1, 20);
        for line in lines(&data) {
            let v: Value = serde_json::from_slice(line).unwrap();
            assert!(v["properties"]["ReportId"].is_string(), "{table}");
        }
    }
}

#[test]
fn rows_show_the_export_quirks() {
    let data = gen("DeviceProcessEvents", 3, 3000);
    let text = std::str::from_utf8(&data).unwrap();
    let mut frac_digits = std::collections::BTreeSet::new();
    let (mut null_group, mut unassigned, mut named) = (0, 0, 0);
    let mut row_sizes = 0usize;
    for line in lines(&data) {
        row_sizes += line.len() + 2;
        let v: Value = serde_json::from_slice(line).unwrap();
        let env = v.as_object().unwrap();
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        let mut expected = vec![
            "time",
            "tenantId",
            "operationName",
            "category",
            "_TimeReceivedBySvc",
            "properties",
            "Tenant",
        ];
        expected.sort();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, expected);
        assert_eq!(v["operationName"], "Publish");
        assert_eq!(v["Tenant"], "DefaultTenant");
        let ts = v["properties"]["Timestamp"].as_str().unwrap();
        frac_digits.insert(ts.find('.').map_or(0, |d| ts.len() - d - 2));
        match &v["properties"]["MachineGroup"] {
            Value::Null => null_group += 1,
            Value::String(s) if s == "UnassignedGroup" => unassigned += 1,
            Value::String(_) => named += 1,
            other => panic!("MachineGroup {other}"),
        }
    }
    // The export's key order, in the bytes.
    assert!(text.starts_with("{\"time\":\"2026-11-24T09:0"));
    let first = text.lines().next().unwrap();
    let order: Vec<usize> = [
        "\"time\"",
        "\"tenantId\"",
        "\"operationName\"",
        "\"category\"",
        "\"_TimeReceivedBySvc\"",
        "\"properties\"",
        "\"Tenant\"",
    ]
    .iter()
    .map(|k| first.find(k).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    assert!(
        frac_digits.contains(&0) && frac_digits.contains(&7),
        "{frac_digits:?}"
    );
    assert!(frac_digits.len() >= 5, "{frac_digits:?}");
    assert!(null_group > 0 && unassigned > 0 && named > 0);
    assert!(text.contains(":null") && text.contains(":\"\""));
    // Non-ASCII: umlauts, CJK, emoji (4-byte UTF-8) and mis-decoded text.
    assert!(text.contains('ü') && text.contains('李') && text.contains("Â®"));
    assert!(text.chars().any(|c| c.len_utf8() == 4), "no emoji");
    let avg = row_sizes / 3000;
    assert!((1500..=4000).contains(&avg), "average row {avg} bytes");
}

#[test]
fn network_rows_mix_string_and_native_additional_fields() {
    let data = gen("DeviceNetworkEvents", 9, 2000);
    let (mut native, mut string, mut nested) = (0, 0, 0);
    for line in lines(&data) {
        let v: Value = serde_json::from_slice(line).unwrap();
        match &v["properties"]["AdditionalFields"] {
            Value::Object(_) => native += 1,
            Value::String(s) => {
                string += 1;
                if s.contains("\"answers\":\"[") {
                    nested += 1;
                    let n = normalize(line, Format::Normalized);
                    let answers = &n["properties"]["AdditionalFields"]["answers"];
                    assert!(answers.as_str().unwrap().starts_with("[\""), "{answers}");
                }
            }
            _ => {}
        }
    }
    assert!(native > 0 && string > 0 && nested > 0);
}

#[test]
fn email_received_time_lacks_z_and_is_normalized() {
    let data = gen("EmailEvents", 2, 5);
    for line in lines(&data) {
        let v: Value = serde_json::from_slice(line).unwrap();
        let r = v["_TimeReceivedBySvc"].as_str().unwrap();
        assert!(!r.ends_with('Z'));
        let n = normalize(line, Format::Normalized);
        assert_eq!(n["received_at"], format!("{r}Z"));
    }
}

#[test]
fn byte_limit_stops_at_the_first_row_past_the_size() {
    for limit in [1u64, 10_000, 100_000] {
        let mut out = Vec::new();
        let rows = generate("DeviceFileEvents", 1, Limit::Bytes(limit), &mut out).unwrap();
        assert!(out.len() as u64 >= limit);
        let ls = lines(&out);
        assert_eq!(ls.len() as u64, rows);
        let last = ls.last().unwrap().len() as u64 + 2;
        assert!((out.len() as u64) - last < limit);
    }
    let mut out = Vec::new();
    assert_eq!(
        generate("DeviceFileEvents", 1, Limit::Bytes(0), &mut out).unwrap(),
        0
    );
    assert!(out.is_empty());
}

#[test]
fn unknown_table_lists_the_supported_ones() {
    let err = generate("NoSuchTable", 1, Limit::Rows(1), &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("NoSuchTable"), "{err}");
    for t in SUPPORTED_TABLES {
        assert!(err.contains(t), "{err}");
    }
}

#[test]
fn timestamps_format_correctly() {
    let mut o = Vec::new();
    write_ts(&mut o, START_UNIX * TICKS_PER_SEC + 1_234_567, 7);
    assert_eq!(o, b"2026-11-24T09:00:00.1234567");
    o.clear();
    write_ts(&mut o, START_UNIX * TICKS_PER_SEC + 1_234_567, 3);
    assert_eq!(o, b"2026-11-24T09:00:00.123");
    o.clear();
    write_ts(&mut o, 0, 0);
    assert_eq!(o, b"1970-01-01T00:00:00");
    o.clear();
    // 2028-02-29 (leap day) 23:59:59.
    write_ts(&mut o, 1_835_481_599 * TICKS_PER_SEC, 0);
    assert_eq!(o, b"2028-02-29T23:59:59");
}

#[test]
fn escaping_and_templates() {
    let mut o = Vec::new();
    esc(&mut o, "a\"b\\c\nd\u{1}é".as_bytes());
    assert_eq!(o, "a\\\"b\\\\c\\nd\\u0001é".as_bytes());
    o.clear();
    let mut rng = Rng::new(1);
    for _ in 0..50 {
        o.clear();
        push_guid(&mut o, &mut rng);
        let g = std::str::from_utf8(&o).unwrap();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4", "{g}");
        assert!("89ab".contains(&g[19..20]), "{g}");
        assert!(g.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
    o.clear();
    expand(&mut o, "{{n}-x {u} {f} {z}", "jürgen", "a.txt", 7);
    assert_eq!(o, "{7-x jürgen a.txt {z}".as_bytes());
}
