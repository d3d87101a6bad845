//! The logs-ingestion sink's resources: its table, rule and stream.

use super::*;

/// Settings whose value the template computes rather than takes from a parameter: the
/// logs-ingestion sink's client id (the app's user-assigned identity) and its endpoint and rule
/// id (the created rule's outputs, else the parameters, empty by default).
pub(super) fn computed_by_the_template(t: &Template, name: &str, v: &V) -> bool {
    match name {
        "RELAY_LOGS_CLIENT_ID" => t.target(v).is_some_and(|(f, s, p)| {
            t.resource_type(f, s) == "Microsoft.ManagedIdentity/userAssignedIdentities"
                && p == ["properties", "clientId"]
        }),
        "RELAY_LOGS_ENDPOINT" | "RELAY_LOGS_RULE_ID" => {
            let V::Op(op, args) = v else { return false };
            // The module's output, resolved to what it reads in the module.
            let (ty, want): (&str, &[&str]) = if name == "RELAY_LOGS_ENDPOINT" {
                (
                    "Microsoft.Insights/dataCollectionEndpoints",
                    &["properties", "logsIngestion", "endpoint"],
                )
            } else {
                (
                    "Microsoft.Insights/dataCollectionRules",
                    &["properties", "immutableId"],
                )
            };
            let created = t.target(&args["true_value"]).is_some_and(|(f, s, p)| {
                f.file == "modules/logs-ingestion.bicep" && t.resource_type(f, s) == ty && p == want
            });
            op == "conditional"
                && created
                && matches!(&args["false_value"], V::Str(s) if s.is_empty())
        }
        _ => false,
    }
}

#[test]
fn logs_ingestion_creates_the_table_the_rule_and_its_stream() {
    let t = template();
    let one = |ty: &str| {
        let r = t.resources_of_type(ty);
        assert!(!r.is_empty(), "no {ty}");
        r.into_iter()
            .find(|(f, _, _)| f.file == "modules/logs-ingestion.bicep")
            .unwrap_or_else(|| panic!("{ty} is not created by modules/logs-ingestion.bicep"))
    };
    // The custom table, with a column for each normalized field that matters in a query.
    let (f, _, table) = one("Microsoft.OperationalInsights/workspaces/tables");
    let body = Template::body(table);
    assert_eq!(
        t.lit(&t.eval(&f, &body["name"])).as_deref(),
        Some("MdeRelayEvents_CL")
    );
    let cols = match t.access(
        t.eval(&f, &body["properties"]),
        &["schema".into(), "columns".into()],
    ) {
        V::Arr(c) => c,
        other => panic!("columns: {other:?}"),
    };
    let col = |c: &V, k: &str| t.lit(&t.access(c.clone(), &[k.to_string()])).unwrap();
    let have: BTreeMap<String, String> = cols
        .iter()
        .map(|c| (col(c, "name"), col(c, "type")))
        .collect();
    for (name, ty) in [
        ("TimeGenerated", "datetime"),
        ("Table", "string"),
        ("Id", "string"),
        ("MdeTenantId", "string"),
        ("Timestamp", "datetime"),
        ("DeviceId", "string"),
        ("DeviceName", "string"),
        ("ActionType", "string"),
        ("ReportId", "string"),
        ("Properties", "dynamic"),
        ("Source", "dynamic"),
    ] {
        assert_eq!(
            have.get(name).map(String::as_str),
            Some(ty),
            "column {name}"
        );
    }
    // Reserved in Log Analytics: a table that declares them fails to deploy.
    for reserved in ["TenantId", "Type"] {
        assert!(
            !have.contains_key(reserved),
            "{reserved} is a reserved column name"
        );
    }

    // An endpoint, and a rule on it whose stream is the sink's default stream and flows into
    // the table.
    one("Microsoft.Insights/dataCollectionEndpoints");
    let (f, _, rule) = one("Microsoft.Insights/dataCollectionRules");
    let props = t.eval(&f, &Template::body(rule)["properties"]);
    let stream = mde_relay::config::setting("RELAY_LOGS_STREAM")
        .and_then(|s| s.default)
        .unwrap();
    match t.access(props.clone(), &["streamDeclarations".into()]) {
        // pycep keeps the quotes of a quoted key.
        V::Obj(m) => assert!(
            m.keys().any(|k| k.trim_matches('\'') == stream),
            "stream {stream} not declared: {m:?}"
        ),
        other => panic!("streamDeclarations: {other:?}"),
    }
    let flow = match t.access(props.clone(), &["dataFlows".into()]) {
        V::Arr(f) => f[0].clone(),
        other => panic!("dataFlows: {other:?}"),
    };
    assert_eq!(
        t.lit(&t.access(flow.clone(), &["outputStream".into()]))
            .as_deref(),
        Some("Custom-MdeRelayEvents_CL")
    );
    let kql = t.lit(&t.access(flow, &["transformKql".into()])).unwrap();
    assert!(
        kql.contains("MdeTenantId") && kql.contains("TimeGenerated"),
        "{kql}"
    );
    assert!(matches!(
        t.access(props, &["dataCollectionEndpointId".into()]),
        V::Sym { .. }
    ));
    // The app is pointed at them.
    let settings = t.app_settings();
    assert_eq!(
        t.lit(&settings["RELAY_LOGS_STREAM"].0).as_deref(),
        Some(stream)
    );
}
