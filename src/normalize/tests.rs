use super::*;
use crate::rows::RowParser;

const TENANT: &str = "0f3c6a5e-1111-4222-8333-944455556666";

fn row(props: &str, time: &str) -> String {
    format!(
        r#"{{"time":"{time}","tenantId":"{TENANT}","operationName":"Publish","category":"AdvancedHunting-DeviceNetworkEvents","_TimeReceivedBySvc":"2026-11-01T10:00:01.123","properties":{props},"Tenant":"DefaultTenant"}}"#
    )
}

fn normalize(line: &str, format: Format) -> serde_json::Value {
    let mut p = RowParser::new();
    let r = p.parse(line.as_bytes()).unwrap();
    let mut b = Batch::new();
    let src = SourceRef {
        container: Some("insights-logs-advancedhunting-devicenetworkevents"),
        blob: "tenantId=x/PT1H.json",
        offset: 42,
    };
    Normalizer::new(format).push(&r, line.as_bytes(), src, &mut b);
    assert_eq!(b.len(), 1);
    assert_eq!(b.ndjson().iter().filter(|&&c| c == b'\n').count(), 1);
    serde_json::from_slice(b.event(0)).unwrap()
}

const PROPS: &str = r#"{"Timestamp":"2026-11-01T09:58:00.1234567Z","DeviceId":"abc","DeviceName":"host-ü","ActionType":"ConnectionSuccess","MachineGroup":null,"ReportId":639199803770463703,"AdditionalFields":"{\"direction\":\"In\",\n\"answers\":\"[\\\"1.2.3.4\\\"]\"}","RemoteIP":"10.0.0.1","New\u00e9Col":"x"}"#;

#[test]
fn normalized_event_fields() {
    let line = row(PROPS, "2026-11-01T10:00:00Z");
    let v = normalize(&line, Format::Normalized);
    assert_eq!(v["schema"], "mde-relay/v1");
    assert_eq!(v["table"], "DeviceNetworkEvents");
    assert_eq!(v["timestamp"], "2026-11-01T09:58:00.1234567Z");
    assert_eq!(v["exported_at"], "2026-11-01T10:00:00Z");
    assert_eq!(v["received_at"], "2026-11-01T10:00:01.123Z");
    assert_eq!(v["tenant_id"], TENANT);
    assert_eq!(v["source"]["offset"], 42);
    assert_eq!(v["device_id"], "abc");
    assert_eq!(v["device_name"], "host-ü");
    assert_eq!(v["machine_group"], serde_json::Value::Null);
    assert_eq!(v["action_type"], "ConnectionSuccess");
    // The dynamic column is an object now; nested JSON-in-string stays a string.
    assert_eq!(v["properties"]["AdditionalFields"]["direction"], "In");
    assert_eq!(
        v["properties"]["AdditionalFields"]["answers"],
        "[\"1.2.3.4\"]"
    );
    assert_eq!(v["properties"]["NewéCol"], "x");
    assert_eq!(v["id"].as_str().unwrap().len(), 32);
}

#[test]
fn big_report_id_survives_digit_for_digit() {
    let line = row(PROPS, "2026-11-01T10:00:00Z");
    let mut p = RowParser::new();
    let r = p.parse(line.as_bytes()).unwrap();
    let mut b = Batch::new();
    let src = SourceRef {
        container: None,
        blob: "f",
        offset: 0,
    };
    Normalizer::new(Format::Normalized).push(&r, line.as_bytes(), src, &mut b);
    let text = std::str::from_utf8(b.event(0)).unwrap();
    assert!(text.contains(r#""report_id":639199803770463703"#), "{text}");
    assert!(text.contains(r#""ReportId":639199803770463703"#), "{text}");
}

#[test]
fn ids_ignore_time_but_not_properties() {
    let a = normalize(&row(PROPS, "2026-11-01T10:00:00Z"), Format::Normalized);
    let b = normalize(&row(PROPS, "2026-11-01T11:30:00Z"), Format::Normalized);
    assert_eq!(a["id"], b["id"]);
    let other = PROPS.replace("abc", "abd");
    let c = normalize(&row(&other, "2026-11-01T10:00:00Z"), Format::Normalized);
    assert_ne!(a["id"], c["id"]);
    // Same id in raw format.
    let r = normalize(&row(PROPS, "2026-11-01T10:00:00Z"), Format::Raw);
    assert_eq!(a["id"], r["id"]);
}

#[test]
fn invalid_dynamic_json_stays_a_string_and_objects_pass() {
    let props = r#"{"Timestamp":"2026-11-01T09:58:00Z","AdditionalFields":"{not json"}"#;
    let v = normalize(&row(props, "2026-11-01T10:00:00Z"), Format::Normalized);
    assert_eq!(v["properties"]["AdditionalFields"], "{not json");
    let props = r#"{"Timestamp":"2026-11-01T09:58:00Z","AdditionalFields":{"a":1}}"#;
    let v = normalize(&row(props, "2026-11-01T10:00:00Z"), Format::Normalized);
    assert_eq!(v["properties"]["AdditionalFields"]["a"], 1);
    let props = r#"{"Timestamp":"2026-11-01T09:58:00Z","AdditionalFields":""}"#;
    let v = normalize(&row(props, "2026-11-01T10:00:00Z"), Format::Normalized);
    assert_eq!(v["properties"]["AdditionalFields"], "");
}

#[test]
fn raw_format_keeps_the_original_row() {
    let line = row(PROPS, "2026-11-01T10:00:00Z");
    let v = normalize(&line, Format::Raw);
    let orig: serde_json::Value = serde_json::from_str(&line).unwrap();
    for (k, val) in orig.as_object().unwrap() {
        assert_eq!(&v[k], val, "{k}");
    }
    assert_eq!(v["table"], "DeviceNetworkEvents");
    assert_eq!(v["source"]["blob"], "tenantId=x/PT1H.json");
}
