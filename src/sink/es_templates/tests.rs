//! Unit tests of the templates and the engine detection.

use super::*;

#[test]
fn engines() {
    let os = json!({"version": {"distribution": "opensearch", "number": "2.19.6"}});
    assert_eq!(Engine::from_root(&os).unwrap().flavor, Flavor::OpenSearch);
    let es = json!({"version": {"number": "8.15.0", "build_flavor": "default"}});
    assert_eq!(
        Engine::from_root(&es).unwrap().to_string(),
        "Elasticsearch 8.15.0"
    );
    let old = json!({"version": {"distribution": "opensearch", "number": "2.5.0"}});
    assert!(Engine::from_root(&old)
        .unwrap_err()
        .to_string()
        .contains("2.7"));
    let old = json!({"version": {"number": "7.7.1"}});
    assert!(Engine::from_root(&old).is_err());
}

#[test]
fn every_table_has_a_template_and_every_json_column_a_flat_type() {
    for flavor in [Flavor::Elasticsearch, Flavor::OpenSearch] {
        let t = templates("mde-relay-{table}", flavor, &TemplateOptions::default());
        assert_eq!(t.index_templates.len(), TABLES.len() + 1);
        let flat = flavor.object_type();
        for info in TABLES {
            let lower = info.name.to_ascii_lowercase();
            let (_, comp) = t
                .components
                .iter()
                .find(|(n, _)| *n == format!("mde-relay@{lower}"))
                .unwrap();
            let props = &comp["template"]["mappings"]["properties"]["properties"]["properties"];
            for j in info.json_columns {
                assert_eq!(props[j]["type"], flat["type"], "{} {j}", info.name);
            }
            let (name, it) = t
                .index_templates
                .iter()
                .find(|(n, _)| *n == format!("mde-relay-{lower}"))
                .unwrap();
            assert_eq!(it["index_patterns"][0], json!(name));
        }
    }
    let dpe = crate::tables::lookup("DeviceProcessEvents").unwrap();
    let p = table_properties(dpe, Flavor::OpenSearch);
    assert_eq!(p["Timestamp"]["type"], "date");
    assert_eq!(p["ReportId"]["type"], "long");
    assert_eq!(p["AdditionalFields"]["type"], "flat_object");
}

#[test]
fn one_index_for_all_tables_keeps_only_agreeing_columns() {
    let t = templates("mde", Flavor::Elasticsearch, &TemplateOptions::default());
    assert_eq!(t.index_templates.len(), 1);
    let (_, comp) = t
        .components
        .iter()
        .find(|(n, _)| n == "mde@all-tables")
        .unwrap();
    let props = &comp["template"]["mappings"]["properties"]["properties"]["properties"];
    // ReportId is a long on Device tables and a string elsewhere: left to dynamic mapping.
    assert!(props.get("ReportId").is_none());
    assert_eq!(props["AdditionalFields"]["type"], "flattened");
    assert_eq!(base_name("logs-mde.{table}"), "logs-mde");
}

#[test]
fn options() {
    let o = TemplateOptions {
        data_stream: true,
        ilm_policy: Some("mde-30d".into()),
    };
    let t = templates("mde-relay-{table}", Flavor::Elasticsearch, &o);
    assert!(t
        .index_templates
        .iter()
        .all(|(_, b)| b["data_stream"] == json!({})));
    assert_eq!(
        t.components[0].1["template"]["settings"]["index.lifecycle.name"],
        "mde-30d"
    );
}

#[test]
fn json_column_values_that_are_not_objects_are_wrapped() {
    let doc = br#"{"@timestamp":"t","id":"x","properties":{"AdditionalFields":["a","b"],"RawEventData":{"k":1},"ActivityObjects":[{"a":1},null],"FileName":"x.exe","DnsAddresses":"not json"}}"#;
    let out = wrap_json_columns("DeviceNetworkInfo", doc).map(|v| String::from_utf8(v).unwrap());
    let v: serde_json::Value = serde_json::from_str(out.as_deref().unwrap()).unwrap();
    assert_eq!(
        v["properties"]["AdditionalFields"],
        serde_json::json!({"value":["a","b"]})
    );
    assert_eq!(
        v["properties"]["DnsAddresses"],
        serde_json::json!({"value":"not json"})
    );
    assert_eq!(v["properties"]["FileName"], "x.exe");
    assert_eq!(v["id"], "x");
    // Objects, arrays of objects and null pass; nothing to wrap leaves the event as it is.
    let fine = br#"{"id":"x","properties":{"AdditionalFields":{"a":[1,"b"]},"FileName":["x"]}}"#;
    assert!(wrap_json_columns("DeviceNetworkInfo", fine).is_none());
    // An array with an object first and a string later is wrapped too.
    let mixed = br#"{"id":"x","properties":{"AdditionalFields":[{"a":1}, "b"]}}"#;
    let v: serde_json::Value =
        serde_json::from_slice(&wrap_json_columns("DeviceNetworkInfo", mixed).unwrap()).unwrap();
    assert_eq!(v["properties"]["AdditionalFields"]["value"][1], "b");
    // Unknown tables: AdditionalFields only.
    let other = br#"{"id":"x","properties":{"AdditionalFields":5,"Other":[1]}}"#;
    let v: serde_json::Value =
        serde_json::from_slice(&wrap_json_columns("NewTable", other).unwrap()).unwrap();
    assert_eq!(v["properties"]["AdditionalFields"]["value"], 5);
    assert_eq!(v["properties"]["Other"], serde_json::json!([1]));
}

#[test]
fn template_errors_keep_no_credential_an_engine_echoes() {
    let key = "ApiKey c2VjcmV0LWFwaS1rZXktdmFsdWU=";
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_static(key));
    let secrets = crate::sink::answer::secrets_of(&headers);
    // An error page that echoes the request's headers, as some proxies do.
    let echoed = json!(format!(
        "unauthorized; request had Authorization: {key} {}",
        "x".repeat(1000)
    ));
    let text = installer::error_text(401, &echoed, &secrets);
    assert!(!text.contains("c2VjcmV0LWFwaS1rZXktdmFsdWU="), "{text}");
    assert!(text.starts_with("401 ("), "{text}");
    assert!(text.chars().count() < 600, "cut short: {text}");
    // The engine's own error object is kept (type and reason), scrubbed the same way.
    let engine = json!({"error": {"type": "security_exception", "reason": format!("bad {key}")}});
    let text = installer::error_text(401, &engine, &secrets);
    assert!(text.contains("security_exception"), "{text}");
    assert!(!text.contains("c2VjcmV0LWFwaS1rZXktdmFsdWU="), "{text}");
}
