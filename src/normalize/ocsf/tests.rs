use super::*;
use crate::normalize::event_id;
use crate::rows::RowParser;
use serde_json::json;
use serde_json::Value;

fn ocsf(table: &str, props: Value) -> Value {
    let line = json!({
        "time": "2026-11-01T10:00:00Z",
        "tenantId": "0f3c6a5e-1111-4222-8333-944455556666",
        "category": format!("AdvancedHunting-{table}"),
        "properties": props,
    })
    .to_string();
    let mut p = RowParser::new();
    let row = p.parse(line.as_bytes()).unwrap();
    let id = event_id("t", table, row.properties);
    let mut out = Vec::new();
    write_event(&row, table, &id, &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    // Invariants of every event.
    assert_eq!(v["metadata"]["version"], "1.5.0");
    assert_eq!(v["metadata"]["product"]["name"], PRODUCT_NAME);
    assert_eq!(v["metadata"]["product"]["vendor_name"], "Microsoft");
    assert_eq!(
        v["metadata"]["uid"].as_str().unwrap(),
        std::str::from_utf8(&id.0).unwrap()
    );
    let class = v["class_uid"].as_u64().unwrap();
    let activity = v["activity_id"].as_u64().unwrap();
    assert_eq!(v["type_uid"].as_u64().unwrap(), class * 100 + activity);
    assert!(v["severity_id"].is_u64());
    v
}

fn initiating() -> Value {
    json!({
        "InitiatingProcessFileName": "cmd.exe",
        "InitiatingProcessFolderPath": "c:\\windows\\system32\\cmd.exe",
        "InitiatingProcessId": 4242,
        "InitiatingProcessCommandLine": "cmd.exe /c whoami",
        "InitiatingProcessIntegrityLevel": "High",
        "InitiatingProcessAccountName": "alice",
        "InitiatingProcessAccountDomain": "contoso",
        "InitiatingProcessAccountSid": "S-1-5-21-1",
        "InitiatingProcessSHA1": "aa",
    })
}

fn with(base: Value, extra: Value) -> Value {
    let mut o = base.as_object().unwrap().clone();
    o.extend(extra.as_object().unwrap().clone());
    Value::Object(o)
}

fn device_cols() -> Value {
    json!({
        "Timestamp": "2026-11-01T09:58:00.1234567Z",
        "DeviceId": "dev1",
        "DeviceName": "host1.contoso.com",
        "MachineGroup": "Servers",
        "ReportId": 639199803770463703u64,
    })
}

#[test]
fn process_event_actor_is_the_initiator_and_process_the_new_one() {
    let props = with(
        with(device_cols(), initiating()),
        json!({"ActionType": "ProcessCreated", "FileName": "whoami.exe", "FolderPath": "C:\\Windows\\System32\\whoami.exe",
        "ProcessId": 77, "ProcessCommandLine": "whoami", "AccountName": "alice", "ProcessIntegrityLevel": "Medium",
        "AdditionalFields": "{\"x\":1}", "BrandNewColumn": "kept"}),
    );
    let v = ocsf("DeviceProcessEvents", props);
    assert_eq!(v["class_uid"], 1007);
    assert_eq!(v["activity_id"], 1);
    assert_eq!(v["actor"]["process"]["pid"], 4242);
    assert_eq!(v["actor"]["process"]["integrity_id"], 4);
    assert_eq!(v["actor"]["process"]["user"]["name"], "alice");
    assert_eq!(
        v["actor"]["process"]["file"]["hashes"][0]["algorithm_id"],
        2
    );
    assert_eq!(v["process"]["pid"], 77);
    assert_eq!(v["process"]["file"]["name"], "whoami.exe");
    assert_eq!(v["process"]["file"]["type_id"], 1);
    assert_eq!(v["process"]["integrity"], "Medium");
    assert_eq!(v["device"]["uid"], "dev1");
    assert_eq!(v["device"]["hostname"], "host1.contoso.com");
    assert_eq!(v["device"]["groups"][0]["name"], "Servers");
    assert_eq!(
        v["metadata"]["original_time"],
        "2026-11-01T09:58:00.1234567Z"
    );
    assert_eq!(v["metadata"]["event_code"], "ProcessCreated");
    assert_eq!(v["time"], 1_793_527_080_123i64);
    // Unplaced columns are kept, JSON-in-string columns decoded, big integers exact.
    assert_eq!(v["unmapped"]["BrandNewColumn"], "kept");
    assert_eq!(v["unmapped"]["AdditionalFields"]["x"], 1);
    assert_eq!(
        v["unmapped"]["ReportId"].as_u64(),
        Some(639199803770463703u64)
    );
}

#[test]
fn failed_logon_is_a_logon_with_failure_status() {
    let props = with(
        device_cols(),
        json!({"ActionType": "LogonFailed", "AccountName": "bob", "AccountSid": "S-1-5-21-2",
        "LogonType": "RemoteInteractive", "Protocol": "Negotiate", "FailureReason": "InvalidUserNameOrPassword",
        "RemoteIP": "10.0.0.5", "RemotePort": "50123", "AdditionalFields": "{\"IsLocalLogon\":false}"}),
    );
    let v = ocsf("DeviceLogonEvents", props);
    assert_eq!(v["class_uid"], 3002);
    assert_eq!(v["activity_id"], 1);
    assert_eq!(v["status_id"], 2);
    assert_eq!(v["status_detail"], "InvalidUserNameOrPassword");
    assert_eq!(v["logon_type_id"], 10);
    assert_eq!(v["logon_type"], "Remote Interactive");
    assert_eq!(v["auth_protocol_id"], 99);
    assert_eq!(v["auth_protocol"], "Negotiate");
    assert_eq!(v["src_endpoint"]["port"], 50123);
    assert_eq!(v["is_remote"], true);
    assert!(v["unmapped"].get("AdditionalFields").is_none());
}

#[test]
fn network_direction_from_additional_fields_and_action() {
    let base = with(
        with(device_cols(), initiating()),
        json!({"LocalIP": "10.1.1.1", "LocalPort": 3389, "RemoteIP": "8.8.8.8", "RemotePort": 51000, "Protocol": "Tcp"}),
    );
    let v = ocsf(
        "DeviceNetworkEvents",
        with(
            base.clone(),
            json!({"ActionType": "InboundConnectionAccepted"}),
        ),
    );
    assert_eq!(v["class_uid"], 4001);
    assert_eq!(v["connection_info"]["direction_id"], 1);
    assert_eq!(v["src_endpoint"]["ip"], "8.8.8.8");
    assert_eq!(v["dst_endpoint"]["port"], 3389);
    assert_eq!(v["connection_info"]["protocol_num"], 6);
    assert_eq!(v["status_id"], 1);
    let v = ocsf(
        "DeviceNetworkEvents",
        with(
            base,
            json!({"ActionType": "DnsConnectionInspected", "AdditionalFields": "{\"direction\":\"In\",\"query\":\"a.example\"}"}),
        ),
    );
    assert_eq!(v["activity_id"], 6);
    assert_eq!(v["connection_info"]["direction_id"], 1);
    assert_eq!(v["unmapped"]["AdditionalFields"]["query"], "a.example");
    assert!(v["unmapped"]["AdditionalFields"].get("direction").is_none());
}

#[test]
fn registry_value_and_key_classes() {
    let base = with(
        with(device_cols(), initiating()),
        json!({"RegistryKey": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso"}),
    );
    let v = ocsf(
        "DeviceRegistryEvents",
        with(
            base.clone(),
            json!({"ActionType": "RegistryValueSet", "RegistryValueName": "", "RegistryValueType": "String", "RegistryValueData": "x"}),
        ),
    );
    assert_eq!(v["class_uid"], 201002);
    assert_eq!(v["type_uid"], 20100202);
    assert_eq!(v["reg_value"]["is_default"], true);
    assert_eq!(v["reg_value"]["type_id"], 10);
    assert_eq!(v["reg_value"]["type"], "REG_SZ");
    let v = ocsf(
        "DeviceRegistryEvents",
        with(base, json!({"ActionType": "RegistryKeyDeleted"})),
    );
    assert_eq!(v["class_uid"], 201001);
    assert_eq!(v["activity_id"], 4);
    assert_eq!(
        v["reg_key"]["path"],
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso"
    );
}

#[test]
fn device_events_by_action_type() {
    let base = with(device_cols(), initiating());
    let v = ocsf(
        "DeviceEvents",
        with(
            base.clone(),
            json!({"ActionType": "PowerShellCommand", "AdditionalFields": "{\"Command\":\"Get-Process\"}"}),
        ),
    );
    assert_eq!(v["class_uid"], 1009);
    assert_eq!(v["script"]["script_content"]["value"], "Get-Process");
    assert!(v
        .get("unmapped")
        .is_none_or(|u| u.get("AdditionalFields").is_none()));
    let v = ocsf(
        "DeviceEvents",
        with(
            base.clone(),
            json!({"ActionType": "DnsQueryResponse", "AdditionalFields": "{\"DnsQueryString\":\"contoso.com\",\"DnsQueryResult\":[{\"DnsQueryType\":1,\"DnsQueryResultRecord\":\"20.1.1.1\"}]}"}),
        ),
    );
    assert_eq!(v["class_uid"], 4003);
    assert_eq!(v["query"]["hostname"], "contoso.com");
    assert_eq!(v["answers"][0]["rdata"], "20.1.1.1");
    let v = ocsf(
        "DeviceEvents",
        with(
            base.clone(),
            json!({"ActionType": "AntivirusDetection", "FileName": "evil.exe", "FolderPath": "C:\\evil.exe", "SHA256": "ff",
            "AdditionalFields": "{\"ThreatName\":\"Trojan:Win32/Test\"}"}),
        ),
    );
    assert_eq!(v["class_uid"], 2004);
    assert_eq!(v["finding_info"]["title"], "Trojan:Win32/Test");
    assert_eq!(v["finding_info"]["uid"], v["metadata"]["uid"]);
    assert_eq!(v["evidences"][0]["file"]["hashes"][0]["algorithm_id"], 3);
    let v = ocsf(
        "DeviceEvents",
        with(base, json!({"ActionType": "UsbDriveMounted"})),
    );
    assert_eq!(v["class_uid"], 0);
    assert_eq!(v["activity_id"], 99);
    assert_eq!(v["activity_name"], "UsbDriveMounted");
    assert_eq!(v["unmapped"]["InitiatingProcessFileName"], "cmd.exe");
}

#[test]
fn other_tables_and_unfillable_rows_become_base_events() {
    let v = ocsf(
        "EmailEvents",
        json!({"Timestamp": "2026-11-01T09:58:00Z", "NetworkMessageId": "n1", "ReportId": "r1"}),
    );
    assert_eq!(v["class_uid"], 0);
    assert!(v.get("device").is_none());
    assert_eq!(v["unmapped"]["NetworkMessageId"], "n1");
    // A process row with no process column at all: not a half-empty Process Activity.
    let v = ocsf(
        "DeviceProcessEvents",
        with(
            device_cols(),
            json!({"ActionType": "ProcessCreated", "FileName": ""}),
        ),
    );
    assert_eq!(v["class_uid"], 0);
    assert_eq!(v["unmapped"]["FileName"], "");
    // A PowerShell row without its command.
    let v = ocsf(
        "DeviceEvents",
        with(
            with(device_cols(), initiating()),
            json!({"ActionType": "PowerShellCommand"}),
        ),
    );
    assert_eq!(v["class_uid"], 0);
}

#[test]
fn file_rename_keeps_old_name_in_file_and_new_in_file_result() {
    let props = with(
        with(device_cols(), initiating()),
        json!({"ActionType": "FileRenamed", "FileName": "b.txt", "FolderPath": "C:\\t\\b.txt",
        "PreviousFileName": "a.txt", "PreviousFolderPath": "C:\\t\\a.txt"}),
    );
    let v = ocsf("DeviceFileEvents", props);
    assert_eq!(v["class_uid"], 1001);
    assert_eq!(v["activity_id"], 5);
    assert_eq!(v["file"]["name"], "a.txt");
    assert_eq!(v["file_result"]["name"], "b.txt");
}

/// Every DeviceNetworkEvents ActionType of the direction table (docs/ocsf.md): activity,
/// direction, which side is the source, and the status.
#[test]
fn network_activity_and_direction_per_action_type() {
    let base = with(
        with(device_cols(), initiating()),
        json!({"LocalIP": "10.1.1.1", "LocalPort": 3389, "RemoteIP": "8.8.8.8", "RemotePort": 51000, "Protocol": "Tcp"}),
    );
    // (ActionType, activity_id, direction_id, src ip, status_id)
    let want: &[(&str, u64, u64, &str, Option<u64>)] = &[
        ("ConnectionSuccess", 1, 2, "10.1.1.1", Some(1)),
        ("ConnectionRequest", 1, 2, "10.1.1.1", None),
        ("ConnectionAttempt", 1, 2, "10.1.1.1", None),
        ("ConnectionAcknowledged", 1, 2, "10.1.1.1", None),
        ("ConnectionFailed", 4, 2, "10.1.1.1", Some(2)),
        ("InboundConnectionAccepted", 1, 1, "8.8.8.8", Some(1)),
        ("InboundConnectionAttempt", 1, 1, "8.8.8.8", None),
        ("InboundConnectionAcknowledged", 1, 1, "8.8.8.8", None),
        ("ListeningConnectionCreated", 7, 0, "10.1.1.1", None),
        ("ConnectionFound", 6, 0, "10.1.1.1", None),
        ("DnsConnectionInspected", 6, 0, "10.1.1.1", None),
        ("FtpConnectionInspected", 6, 0, "10.1.1.1", None),
        ("HttpConnectionInspected", 6, 0, "10.1.1.1", None),
        ("IcmpConnectionInspected", 6, 0, "10.1.1.1", None),
        ("SmtpConnectionInspected", 6, 0, "10.1.1.1", None),
        ("SshConnectionInspected", 6, 0, "10.1.1.1", None),
        ("SslConnectionInspected", 6, 0, "10.1.1.1", None),
        ("NetworkSignatureInspected", 6, 0, "10.1.1.1", None),
        ("InboundInternetScanInspected", 6, 1, "8.8.8.8", None),
        ("SomethingNew", 99, 0, "10.1.1.1", None),
    ];
    assert_eq!(want.len() - 1, network::NETWORK_ACTIONS.len());
    for &(action, activity, dir, src, status) in want {
        let v = ocsf(
            "DeviceNetworkEvents",
            with(base.clone(), json!({ "ActionType": action })),
        );
        assert_eq!(v["class_uid"], 4001, "{action}");
        assert_eq!(v["activity_id"], activity, "{action}");
        assert_eq!(v["connection_info"]["direction_id"], dir, "{action}");
        assert_eq!(v["src_endpoint"]["ip"], src, "{action}");
        assert_eq!(v["status_id"].as_u64(), status, "{action}");
    }
}

/// The oddities real rows have: none of them gives an invalid object, every value that cannot
/// be placed stays in `unmapped` under its column name.
#[test]
fn odd_values_go_to_unmapped_and_objects_keep_their_constraints() {
    // A placeholder address and out-of-range ports: not placed; the device is the local side.
    let v = ocsf(
        "DeviceNetworkEvents",
        with(
            with(device_cols(), initiating()),
            json!({"ActionType": "ConnectionSuccess", "LocalIP": "-", "LocalPort": -1,
                   "RemoteIP": "", "RemotePort": 18446744073709551615u64}),
        ),
    );
    assert_eq!(v["class_uid"], 4001);
    assert_eq!(v["unmapped"]["LocalIP"], "-");
    assert_eq!(v["unmapped"]["LocalPort"], -1);
    assert_eq!(v["unmapped"]["RemotePort"], 18446744073709551615u64);
    assert_eq!(v["src_endpoint"]["hostname"], "host1.contoso.com");
    assert!(v.get("dst_endpoint").is_none(), "{v}");
    // A RemotePort without RemoteIP: no endpoint of a port alone.
    let v = ocsf(
        "DeviceNetworkEvents",
        with(
            with(device_cols(), initiating()),
            json!({"ActionType": "ConnectionSuccess", "LocalIP": "10.0.0.1", "RemotePort": 443}),
        ),
    );
    assert!(v.get("dst_endpoint").is_none(), "{v}");
    assert_eq!(v["unmapped"]["RemotePort"], 443);
    // No pid or unique id: the initiating block is no OCSF process; Process Activity cannot
    // be filled, so a Base Event keeps everything.
    let mut init = initiating();
    init["InitiatingProcessId"] = Value::Null;
    let v = ocsf(
        "DeviceProcessEvents",
        with(
            with(device_cols(), init.clone()),
            json!({"ActionType": "ProcessCreated", "ProcessId": 5, "FileName": "a.exe"}),
        ),
    );
    assert_eq!(v["class_uid"], 0);
    assert_eq!(v["unmapped"]["InitiatingProcessFileName"], "cmd.exe");
    // On a class whose actor is optional the actor just goes, with its columns.
    let v = ocsf(
        "DeviceEvents",
        with(
            with(device_cols(), init),
            json!({"ActionType": "AntivirusDetection", "FileName": "x.exe"}),
        ),
    );
    assert_eq!(v["class_uid"], 2004);
    assert!(v.get("actor").is_none(), "{v}");
    assert_eq!(
        v["unmapped"]["InitiatingProcessCommandLine"],
        "cmd.exe /c whoami"
    );
    // A product version without product name: no `product` object.
    let v = ocsf(
        "DeviceProcessEvents",
        with(
            with(device_cols(), initiating()),
            json!({"ActionType": "ProcessCreated", "ProcessId": 5, "FileName": "a.exe",
                   "ProcessVersionInfoProductVersion": "1.2"}),
        ),
    );
    assert_eq!(v["class_uid"], 1007);
    assert!(v["process"]["file"].get("product").is_none(), "{v}");
    assert_eq!(v["unmapped"]["ProcessVersionInfoProductVersion"], "1.2");
    // A pid above 2^63: not an integer_t.
    let v = ocsf(
        "DeviceProcessEvents",
        with(
            with(device_cols(), initiating()),
            json!({"ActionType": "ProcessCreated", "ProcessId": 9223372036854775808u64,
                   "ProcessUniqueId": "77", "FileName": "a.exe"}),
        ),
    );
    assert_eq!(v["class_uid"], 1007);
    assert_eq!(v["process"]["uid"], "77");
    assert!(v["process"].get("pid").is_none());
    assert_eq!(v["unmapped"]["ProcessId"], 9223372036854775808u64);
}

/// The tables beyond Device: each gets its class from a row shaped like the export's.
#[test]
fn alert_identity_email_cloud_and_inventory_classes() {
    let v = ocsf(
        "AlertInfo",
        json!({"Timestamp": "2026-11-01T09:58:00Z", "AlertId": "da1", "Title": "Suspicious PowerShell",
               "Category": "Execution", "Severity": "High", "ServiceSource": "Microsoft Defender for Endpoint",
               "AttackTechniques": "[\"PowerShell (T1059.001)\",\"Process Injection (T1055)\",\"not one\"]"}),
    );
    assert_eq!(v["class_uid"], 2004);
    assert_eq!(v["severity_id"], 4);
    assert_eq!(v["finding_info"]["uid"], "da1");
    assert_eq!(v["finding_info"]["types"][0], "Execution");
    let attacks = &v["finding_info"]["attacks"];
    assert_eq!(attacks[0]["technique"]["uid"], "T1059");
    assert_eq!(attacks[0]["sub_technique"]["uid"], "T1059.001");
    assert_eq!(attacks[0]["sub_technique"]["name"], "PowerShell");
    assert_eq!(attacks[1]["technique"]["name"], "Process Injection");
    assert_eq!(attacks.as_array().unwrap().len(), 2);
    let v = ocsf(
        "AlertEvidence",
        json!({"AlertId": "da1", "Title": "t", "EntityType": "File", "FileName": "x.exe", "SHA1": "ab"}),
    );
    assert_eq!(
        (v["class_uid"].as_u64(), v["activity_id"].as_u64()),
        (Some(2004), Some(2))
    );
    assert_eq!(v["evidences"][0]["file"]["name"], "x.exe");
    let v = ocsf(
        "IdentityLogonEvents",
        json!({"ActionType": "LogonFailed", "Application": "Active Directory", "LogonType": "Credentials validation",
               "Protocol": "Kerberos", "AccountName": "admin", "DeviceName": "ws1", "IPAddress": "10.0.0.9"}),
    );
    assert_eq!(v["class_uid"], 3002);
    assert_eq!(v["status_id"], 2);
    assert_eq!(v["service"]["name"], "Active Directory");
    assert_eq!(v["src_endpoint"]["hostname"], "ws1");
    assert!(
        v.get("device").is_none(),
        "DeviceName is the peer, not the host: {v}"
    );
    let v = ocsf(
        "EmailEvents",
        json!({"NetworkMessageId": "m1", "SenderFromAddress": "a@x.example", "RecipientEmailAddress": "b@contoso.de",
               "EmailDirection": "Inbound", "SenderIPv4": "198.51.100.7"}),
    );
    assert_eq!(v["class_uid"], 4009);
    assert_eq!(
        (v["direction_id"].as_u64(), v["activity_id"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(v["email"]["to"][0], "b@contoso.de");
    let v = ocsf(
        "CloudAppEvents",
        json!({"ActionType": "FileDownloaded", "Application": "Microsoft SharePoint Online", "ActivityType": "Download",
               "AccountObjectId": "u1", "IPAddress": "203.0.113.5"}),
    );
    assert_eq!(v["class_uid"], 6003);
    assert_eq!(v["api"]["operation"], "FileDownloaded");
    assert_eq!(v["activity_id"], 2);
    let v = ocsf(
        "DeviceInfo",
        with(
            device_cols(),
            json!({"OSPlatform": "Windows11", "OSArchitecture": "64-bit"}),
        ),
    );
    assert_eq!(v["class_uid"], 5001);
    assert_eq!(v["device"]["os"]["type_id"], 100);
    assert_eq!(v["device"]["os"]["cpu_bits"], 64);
    // Without the account or the address API Activity requires: a Base Event.
    let v = ocsf("CloudAppEvents", json!({"ActionType": "FileDownloaded"}));
    assert_eq!(v["class_uid"], 0);
}
