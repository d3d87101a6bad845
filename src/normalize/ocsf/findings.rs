//! Findings family: Detection Finding (2004) for DeviceEvents `AntivirusDetection`.

use super::{device, f, initiating_actor, Class, Conv, Event, Field, Mapped};
use serde_json::Value;

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
    let uid = ev.id.clone();
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
