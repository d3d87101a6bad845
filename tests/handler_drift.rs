//! The handler reports schema drift: the real `mde-relay serve` against Azurite logs each new
//! (table, column, kind) once per process as a structured warning `event=schema_drift`, while
//! every row is still forwarded unchanged.

mod common;
mod relay;

use relay::{event_ids, Env, Relay, TENANT};
use serde_json::Value;

/// A DeviceProcessEvents row with a column its doc lacks (`ProcessUniqueId`) and the given
/// `AdditionalFields` JSON string literal.
fn drift_row(i: u64, additional: &str) -> String {
    format!(
        r#"{{"time":"2026-01-01T00:59:00.0000000Z","tenantId":"{TENANT}","operationName":"Publish","category":"AdvancedHunting-DeviceProcessEvents","properties":{{"Timestamp":"2026-01-01T00:00:{i:02}Z","DeviceId":"dev","DeviceName":"host","ActionType":"ProcessCreated","MachineGroup":"UnassignedGroup","ReportId":{i},"ProcessUniqueId":{i},"AdditionalFields":{additional}}},"Tenant":"DefaultTenant"}}"#
    )
}

/// The `schema_drift` warnings in the relay's JSON log lines: (table, column, kind).
fn drift_logs(logs: &str) -> Vec<(String, String, String)> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "schema_drift")
        .map(|v| {
            assert_eq!(v["level"], "WARN", "{v}");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("table"), s("column"), s("kind"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_new_drift_is_logged_once_per_process() {
    let env = Env::new().await;
    let relay = Relay::start(&env, &[]).await;
    let hour = chrono::Utc::now().format("%Y/%m/%d/%H").to_string();
    let blob = Env::blob_name(&hour);
    env.create_append(&blob).await;
    let mut data = String::new();
    for i in 0..5 {
        data.push_str(&drift_row(i, r#""{\"n\":1}""#));
        data.push_str("\r\n");
    }
    env.append(&blob, data.as_bytes()).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200, "{}", relay.logs());
    assert_eq!(event_ids(&env.events_path()).0.len(), 5, "{}", relay.logs());
    assert_eq!(
        drift_logs(&relay.logs()),
        vec![(
            "DeviceProcessEvents".to_string(),
            "ProcessUniqueId".to_string(),
            "undocumented_column".to_string()
        )],
        "{}",
        relay.logs()
    );

    // More rows with the same drift and one new kind: only the new one is logged.
    let mut more = String::new();
    for i in 5..8 {
        more.push_str(&drift_row(i, r#""{\"n\":""#));
        more.push_str("\r\n");
    }
    env.append(&blob, more.as_bytes()).await;
    let (st, _) = relay.tail().await;
    assert_eq!(st, 200, "{}", relay.logs());
    assert_eq!(event_ids(&env.events_path()).0.len(), 8, "{}", relay.logs());
    let logs = drift_logs(&relay.logs());
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(
        logs[1],
        (
            "DeviceProcessEvents".to_string(),
            "AdditionalFields".to_string(),
            "undecodable_json".to_string()
        )
    );
}
