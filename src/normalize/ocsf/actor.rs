//! The `InitiatingProcess*` block every Device event table carries, as `actor.process`, and
//! the integrity-level enum shared with the process a row is about.

use super::builder::{f, Conv, Event, Field};
use super::valid::enforce_at;

/// Places the `InitiatingProcess*` block as `actor.process` (every Device table but
/// DeviceInfo-like ones carries it).
pub(crate) const INITIATING: &[Field] = &[
    f("InitiatingProcessFileName", "actor.process.name", Conv::Str),
    f(
        "InitiatingProcessFileName",
        "actor.process.file.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessFolderPath",
        "actor.process.file.path",
        Conv::Str,
    ),
    f(
        "InitiatingProcessMD5",
        "actor.process.file.hashes",
        Conv::Hash(1),
    ),
    f(
        "InitiatingProcessSHA1",
        "actor.process.file.hashes",
        Conv::Hash(2),
    ),
    f(
        "InitiatingProcessSHA256",
        "actor.process.file.hashes",
        Conv::Hash(3),
    ),
    f(
        "InitiatingProcessFileSize",
        "actor.process.file.size",
        Conv::Int,
    ),
    f(
        "InitiatingProcessVersionInfoCompanyName",
        "actor.process.file.company_name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoProductName",
        "actor.process.file.product.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoProductVersion",
        "actor.process.file.product.version",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoFileVersion",
        "actor.process.file.version",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoFileDescription",
        "actor.process.file.desc",
        Conv::Str,
    ),
    f(
        "InitiatingProcessVersionInfoOriginalFileName",
        "actor.process.file.internal_name",
        Conv::Str,
    ),
    f("InitiatingProcessId", "actor.process.pid", Conv::Int),
    f("InitiatingProcessUniqueId", "actor.process.uid", Conv::Str),
    f(
        "InitiatingProcessCommandLine",
        "actor.process.cmd_line",
        Conv::Str,
    ),
    f(
        "InitiatingProcessCreationTime",
        "actor.process.created_time",
        Conv::Time,
    ),
    f(
        "InitiatingProcessAccountName",
        "actor.process.user.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessAccountDomain",
        "actor.process.user.domain",
        Conv::Str,
    ),
    f(
        "InitiatingProcessAccountSid",
        "actor.process.user.uid",
        Conv::Str,
    ),
    f(
        "InitiatingProcessAccountObjectId",
        "actor.process.user.uid_alt",
        Conv::Str,
    ),
    f(
        "InitiatingProcessAccountUpn",
        "actor.process.user.email_addr",
        Conv::Str,
    ),
    f(
        "InitiatingProcessLogonId",
        "actor.process.session.uid",
        Conv::Str,
    ),
    f(
        "InitiatingProcessParentId",
        "actor.process.parent_process.pid",
        Conv::Int,
    ),
    f(
        "InitiatingProcessParentFileName",
        "actor.process.parent_process.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessParentFileName",
        "actor.process.parent_process.file.name",
        Conv::Str,
    ),
    f(
        "InitiatingProcessParentCreationTime",
        "actor.process.parent_process.created_time",
        Conv::Time,
    ),
];

/// Applies [`INITIATING`] and the integrity level; returns whether the result is an OCSF
/// `process` (one of `pid`/`uid`/`cpid`). When it is not, what was placed goes back to
/// `unmapped`; a `user` without name or uid does too (see [`super::valid`]).
pub(crate) fn initiating_actor(ev: &mut Event) -> bool {
    integrity(ev, "InitiatingProcessIntegrityLevel", "actor.process");
    ev.apply(INITIATING);
    enforce_at(ev, "actor.process");
    let ok = ev.get("actor.process").is_some();
    if !ok {
        // Nothing of the actor is left: not even an empty object.
        enforce_at(ev, "actor");
    }
    ok
}

/// Maps an MDE integrity level column to `<path>.integrity_id` and `<path>.integrity`.
pub(crate) fn integrity(ev: &mut Event, column: &str, path: &str) {
    let Some(level) = ev.col_str(column).map(str::to_string) else {
        return;
    };
    let (id, caption) = match level.to_ascii_lowercase().as_str() {
        "untrusted" => (1, "Untrusted".to_string()),
        "low" => (2, "Low".to_string()),
        "medium" => (3, "Medium".to_string()),
        "high" => (4, "High".to_string()),
        "system" => (5, "System".to_string()),
        "protected" => (6, "Protected".to_string()),
        _ => (99, level),
    };
    match path {
        // The paths the mappings use, without making them at run time.
        "actor.process" => {
            ev.take_col(column, "actor.process.integrity_id");
            ev.set("actor.process.integrity_id", id.into());
            ev.set("actor.process.integrity", caption.into());
        }
        "process" => {
            ev.take_col(column, "process.integrity_id");
            ev.set("process.integrity_id", id.into());
            ev.set("process.integrity", caption.into());
        }
        _ => {
            ev.take_col(column, format!("{path}.integrity_id"));
            ev.set_owned(&format!("{path}.integrity_id"), id.into());
            ev.set_owned(&format!("{path}.integrity"), caption.into());
        }
    }
}
