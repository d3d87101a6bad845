//! Findings family: Detection Finding (2004) for DeviceEvents `AntivirusDetection`, AlertInfo,
//! AlertEvidence, BehaviorInfo and BehaviorEntities.

use super::value::Value;
use super::{device, f, initiating_actor, Class, Conv, Event, Field, Mapped};
use serde_json::Value as JsonValue;

const DETECTION_FINDING: Class = Class {
    uid: 2004,
    name: "Detection Finding",
    category_uid: 2,
    category_name: "Findings",
};

/// The detected file is the finding's evidence.
const EVIDENCE: &[Field] = &[
    f("FileName", "evidences.0.file.name", Conv::Str),
    f("FolderPath", "evidences.0.file.path", Conv::Str),
    f("MD5", "evidences.0.file.hashes", Conv::Hash(1)),
    f("SHA1", "evidences.0.file.hashes", Conv::Hash(2)),
    f("SHA256", "evidences.0.file.hashes", Conv::Hash(3)),
    f("FileSize", "evidences.0.file.size", Conv::Int),
];

/// DeviceEvents `AntivirusDetection` → Detection Finding (Create). The row is one detection,
/// not an alert with an id, so `finding_info.uid` is the relay's event id (stable across the
/// export's re-deliveries); the title is `AdditionalFields.ThreatName`. The row carries no
/// severity: `severity_id` is 0 (Unknown).
pub(super) fn detection_finding(mut ev: Event) -> Mapped {
    let uid = ev.id;
    ev.set("finding_info.uid", uid.into());
    if let Some(Value::String(t)) = ev.additional("ThreatName").cloned() {
        ev.take_additional("ThreatName", "finding_info.title");
        ev.set("finding_info.title", t.into());
    }
    ev.apply(EVIDENCE);
    // The process that was running the file: `actor` from the host profile. An evidence
    // without a file is taken out by the OCSF rules (`valid`).
    initiating_actor(&mut ev);
    device(&mut ev);
    ev.classify(DETECTION_FINDING, 1, "Create", 0);
    Some(ev)
}

/// AlertInfo / AlertEvidence / BehaviorInfo / BehaviorEntities: the alert or behavior itself.
const FINDING: &[Field] = &[
    f("AlertId", "finding_info.uid", Conv::Str),
    f("BehaviorId", "finding_info.uid", Conv::Str),
    f("Title", "finding_info.title", Conv::Str),
    f("Description", "finding_info.desc", Conv::Str),
    f("Category", "finding_info.types", Conv::StrList),
    f("ServiceSource", "finding_info.product.name", Conv::Str),
    f("StartTime", "finding_info.first_seen_time", Conv::Time),
    f("EndTime", "finding_info.last_seen_time", Conv::Time),
];

/// AlertEvidence / BehaviorEntities: the entity the row is about, as the finding's evidence.
const ENTITY: &[Field] = &[
    f("FileName", "evidences.0.file.name", Conv::Str),
    f("FolderPath", "evidences.0.file.path", Conv::Str),
    f("SHA1", "evidences.0.file.hashes", Conv::Hash(2)),
    f("SHA256", "evidences.0.file.hashes", Conv::Hash(3)),
    f("FileSize", "evidences.0.file.size", Conv::Int),
    f("AccountName", "evidences.0.user.name", Conv::Str),
    f("AccountDomain", "evidences.0.user.domain", Conv::Str),
    f("AccountSid", "evidences.0.user.uid", Conv::Str),
    f("AccountObjectId", "evidences.0.user.uid_alt", Conv::Str),
    f("AccountUpn", "evidences.0.user.email_addr", Conv::Str),
    f("RemoteIP", "evidences.0.dst_endpoint.ip", Conv::Ip),
    f("LocalIP", "evidences.0.src_endpoint.ip", Conv::Ip),
    f("RemoteUrl", "evidences.0.url.url_string", Conv::Str),
];

/// MDE's alert severities → `severity_id`.
fn severity_of(s: Option<&str>) -> u32 {
    match s.map(str::to_ascii_lowercase).as_deref() {
        None => 0,
        Some("informational") => 1,
        Some("low") => 2,
        Some("medium") => 3,
        Some("high") => 4,
        Some("critical") => 5,
        Some(_) => 99,
    }
}

/// MITRE ATT&CK technique ids in `AttackTechniques` (a JSON array of strings such as
/// `"Process Injection (T1055)"` or `"T1059.001"`, or plain text): one `attacks` entry per id, a
/// sub-technique (`T1055.012`) also naming its technique. Returns `None` when the text holds no
/// id (the column then stays in `unmapped`).
fn attacks(text: &Value<'_>) -> Option<JsonValue> {
    let items: Vec<String> = match text {
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str())
            .map(String::from)
            .collect(),
        Value::String(s) => match serde_json::from_str::<Vec<String>>(s) {
            Ok(list) => list,
            Err(_) => s.split(',').map(|p| p.trim().to_string()).collect(),
        },
        _ => return None,
    };
    let mut out = Vec::new();
    for item in &items {
        let Some(id) = technique_id(item) else {
            continue;
        };
        // "Name (T1055)": the name is what precedes the id.
        let name = item
            .split_once(" (")
            .map(|(n, _)| n.trim())
            .filter(|n| !n.is_empty() && !n.starts_with('T'));
        let mut attack = serde_json::Map::new();
        let (tech, sub) = match id.split_once('.') {
            Some((t, _)) => (t.to_string(), Some(id.to_string())),
            None => (id.to_string(), None),
        };
        let mut technique = serde_json::json!({ "uid": tech });
        match (&sub, name) {
            (Some(sub), n) => {
                let mut st = serde_json::json!({ "uid": sub });
                if let Some(n) = n {
                    st["name"] = n.into();
                }
                attack.insert("sub_technique".into(), st);
            }
            (None, Some(n)) => technique["name"] = n.into(),
            (None, None) => {}
        }
        attack.insert("technique".into(), technique);
        out.push(JsonValue::Object(attack));
    }
    (!out.is_empty()).then_some(JsonValue::Array(out))
}

/// The first `T` + 4 digits (+ `.` + 3 digits) in `s`.
fn technique_id(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    (0..b.len()).find_map(|i| {
        let digits = |from: usize, n: usize| {
            b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
        };
        if b[i] != b'T' || !digits(i + 1, 4) || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            return None;
        }
        let end = if b.get(i + 5) == Some(&b'.') && digits(i + 6, 3) {
            i + 9
        } else {
            i + 5
        };
        if b.get(end).is_some_and(u8::is_ascii_alphanumeric) {
            return None;
        }
        Some(&s[i..end])
    })
}

/// AlertInfo, AlertEvidence, BehaviorInfo, BehaviorEntities → Detection Finding. The alert
/// (or behavior) row itself is Create; an evidence/entity row adds to a finding: Update, with
/// its entity as `evidences`. `AttackTechniques` become `finding_info.attacks`.
pub(super) fn alert_finding(mut ev: Event, evidence_row: bool) -> Mapped {
    ev.apply(FINDING);
    let severity = severity_of(ev.col_str("Severity"));
    if severity != 0 {
        ev.take_col("Severity", "severity_id");
    }
    if let Some(a) = ev.props.get("AttackTechniques").and_then(attacks) {
        ev.take_col("AttackTechniques", "finding_info.attacks");
        ev.set("finding_info.attacks", a.into());
    }
    if evidence_row {
        ev.apply(ENTITY);
    }
    if ev.get("device").is_some() {
        device(&mut ev);
    }
    let (id, name) = if evidence_row {
        (2, "Update")
    } else {
        (1, "Create")
    };
    ev.classify(DETECTION_FINDING, id, name, severity);
    Some(ev)
}
