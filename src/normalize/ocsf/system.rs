//! System Activity family: Process Activity (1007), File System Activity (1001), Module
//! Activity (1005), Script Activity (1009), and the Windows extension's Registry Key Activity
//! (201001) and Registry Value Activity (201002).

use super::value::Value;
use super::{
    action, activity_of, device, f, initiating_actor, integrity, Class, Conv, Event, Field, Mapped,
};

const fn system(uid: u32, name: &'static str) -> Class {
    Class {
        uid,
        name,
        category_uid: 1,
        category_name: "System Activity",
    }
}

const PROCESS_ACTIVITY: Class = system(1007, "Process Activity");
const FILE_ACTIVITY: Class = system(1001, "File System Activity");
const MODULE_ACTIVITY: Class = system(1005, "Module Activity");
const SCRIPT_ACTIVITY: Class = system(1009, "Script Activity");
const REGISTRY_KEY_ACTIVITY: Class = system(201001, "Registry Key Activity");
const REGISTRY_VALUE_ACTIVITY: Class = system(201002, "Registry Value Activity");

/// DeviceProcessEvents: the new process.
const PROCESS: &[Field] = &[
    f("FileName", "process.name", Conv::Str),
    f("FileName", "process.file.name", Conv::Str),
    f("FolderPath", "process.file.path", Conv::Str),
    f("MD5", "process.file.hashes", Conv::Hash(1)),
    f("SHA1", "process.file.hashes", Conv::Hash(2)),
    f("SHA256", "process.file.hashes", Conv::Hash(3)),
    f("FileSize", "process.file.size", Conv::Int),
    f(
        "ProcessVersionInfoCompanyName",
        "process.file.company_name",
        Conv::Str,
    ),
    f(
        "ProcessVersionInfoProductName",
        "process.file.product.name",
        Conv::Str,
    ),
    f(
        "ProcessVersionInfoProductVersion",
        "process.file.product.version",
        Conv::Str,
    ),
    f(
        "ProcessVersionInfoFileVersion",
        "process.file.version",
        Conv::Str,
    ),
    f(
        "ProcessVersionInfoFileDescription",
        "process.file.desc",
        Conv::Str,
    ),
    f(
        "ProcessVersionInfoOriginalFileName",
        "process.file.internal_name",
        Conv::Str,
    ),
    f("ProcessId", "process.pid", Conv::Int),
    f("ProcessUniqueId", "process.uid", Conv::Str),
    f("ProcessCommandLine", "process.cmd_line", Conv::Str),
    f("ProcessCreationTime", "process.created_time", Conv::Time),
    f("AccountName", "process.user.name", Conv::Str),
    f("AccountDomain", "process.user.domain", Conv::Str),
    f("AccountSid", "process.user.uid", Conv::Str),
    f("AccountObjectId", "process.user.uid_alt", Conv::Str),
    f("AccountUpn", "process.user.email_addr", Conv::Str),
    f("LogonId", "process.session.uid", Conv::Str),
];

const PROCESS_ACTIONS: &[(&str, u32, &str)] = &[("ProcessCreated", 1, "Launch")];

/// DeviceProcessEvents → Process Activity: `actor.process` is the initiating process, `process`
/// the one it created.
pub(super) fn process_activity(mut ev: Event) -> Mapped {
    let has_actor = initiating_actor(&mut ev);
    integrity(&mut ev, "ProcessIntegrityLevel", "process");
    ev.apply(PROCESS);
    super::valid::enforce_at(&mut ev, "process");
    if !has_actor || ev.get("process").is_none() {
        return None;
    }
    device(&mut ev);
    let (id, name) = activity_of(action(&ev).as_deref(), PROCESS_ACTIONS);
    ev.classify(PROCESS_ACTIVITY, id, &name, 1);
    Some(ev)
}

/// The file a DeviceFileEvents row is about (on a rename: the new name, see [`RENAMED`]).
const FILE: &[Field] = &[
    f("FileName", "file.name", Conv::Str),
    f("FolderPath", "file.path", Conv::Str),
    f("MD5", "file.hashes", Conv::Hash(1)),
    f("SHA1", "file.hashes", Conv::Hash(2)),
    f("SHA256", "file.hashes", Conv::Hash(3)),
    f("FileSize", "file.size", Conv::Int),
    f("FileOriginUrl", "file.url.url_string", Conv::Str),
];

/// A rename: OCSF's `file` is the file acted on (its old name) and `file_result` the outcome.
const RENAMED: &[Field] = &[
    f("PreviousFileName", "file.name", Conv::Str),
    f("PreviousFolderPath", "file.path", Conv::Str),
    f("FileName", "file_result.name", Conv::Str),
    f("FolderPath", "file_result.path", Conv::Str),
    f("MD5", "file_result.hashes", Conv::Hash(1)),
    f("SHA1", "file_result.hashes", Conv::Hash(2)),
    f("SHA256", "file_result.hashes", Conv::Hash(3)),
    f("FileSize", "file_result.size", Conv::Int),
    f("FileOriginUrl", "file_result.url.url_string", Conv::Str),
];

/// The account that asked for the operation (remote SMB access and the like).
const REQUEST_ACCOUNT: &[Field] = &[
    f("RequestAccountName", "actor.user.name", Conv::Str),
    f("RequestAccountDomain", "actor.user.domain", Conv::Str),
    f("RequestAccountSid", "actor.user.uid", Conv::Str),
];

const FILE_ACTIONS: &[(&str, u32, &str)] = &[
    ("FileCreated", 1, "Create"),
    ("FileModified", 3, "Update"),
    ("FileDeleted", 4, "Delete"),
    ("FileRenamed", 5, "Rename"),
];

/// DeviceFileEvents → File System Activity.
pub(super) fn file_activity(mut ev: Event) -> Mapped {
    let act = action(&ev);
    initiating_actor(&mut ev);
    ev.apply(REQUEST_ACCOUNT);
    // A user with only a domain goes back to `unmapped`, so does an actor left empty.
    super::valid::enforce_at(&mut ev, "actor");
    let renamed = act.as_deref() == Some("FileRenamed") && ev.col_str("PreviousFileName").is_some();
    ev.apply(if renamed { RENAMED } else { FILE });
    if !ev.has_any("actor", &["process", "user"]) || ev.get("file").is_none() {
        return None;
    }
    device(&mut ev);
    let (id, name) = activity_of(act.as_deref(), FILE_ACTIONS);
    ev.classify(FILE_ACTIVITY, id, &name, 1);
    Some(ev)
}

/// DeviceImageLoadEvents: the loaded image.
const MODULE: &[Field] = &[
    f("FileName", "module.file.name", Conv::Str),
    f("FolderPath", "module.file.path", Conv::Str),
    f("MD5", "module.file.hashes", Conv::Hash(1)),
    f("SHA1", "module.file.hashes", Conv::Hash(2)),
    f("SHA256", "module.file.hashes", Conv::Hash(3)),
    f("FileSize", "module.file.size", Conv::Int),
];

const MODULE_ACTIONS: &[(&str, u32, &str)] = &[("ImageLoaded", 1, "Load")];

/// DeviceImageLoadEvents → Module Activity.
pub(super) fn module_activity(mut ev: Event) -> Mapped {
    if !initiating_actor(&mut ev) {
        return None;
    }
    ev.apply(MODULE);
    // The export reports images the Windows loader mapped: OCSF's "Standard" load type.
    ev.set("module.load_type_id", 1.into());
    ev.set("module.load_type", "Standard".into());
    device(&mut ev);
    let (id, name) = activity_of(action(&ev).as_deref(), MODULE_ACTIONS);
    ev.classify(MODULE_ACTIVITY, id, &name, 1);
    Some(ev)
}

/// DeviceEvents `PowerShellCommand` → Script Activity: the command is in
/// `AdditionalFields.Command`.
pub(super) fn script_activity(mut ev: Event) -> Mapped {
    if !initiating_actor(&mut ev) {
        return None;
    }
    let command = match ev.additional("Command") {
        Some(Value::String(c)) if !c.is_empty() => c.clone(),
        _ => return None,
    };
    ev.take_additional("Command", "script.script_content.value");
    // OCSF 1.5 holds script text in a `long_string` object.
    ev.set("script.script_content.value", command.into());
    ev.set("script.type_id", 2.into());
    ev.set("script.type", "PowerShell".into());
    device(&mut ev);
    ev.classify(SCRIPT_ACTIVITY, 1, "Execute", 1);
    Some(ev)
}

const KEY_ACTIONS: &[(&str, u32, &str)] = &[
    ("RegistryKeyCreated", 1, "Create"),
    ("RegistryKeyDeleted", 4, "Delete"),
    ("RegistryKeyRenamed", 5, "Rename"),
];

const VALUE_ACTIONS: &[(&str, u32, &str)] = &[
    ("RegistryValueSet", 2, "Set"),
    ("RegistryValueDeleted", 4, "Delete"),
];

/// The value types MDE writes in `RegistryValueType` and the OCSF `reg_value.type_id`.
const VALUE_TYPES: &[(&str, u32, &str)] = &[
    ("Binary", 1, "REG_BINARY"),
    ("Dword", 2, "REG_DWORD"),
    ("DwordBigEndian", 3, "REG_DWORD_BIG_ENDIAN"),
    ("ExpandString", 4, "REG_EXPAND_SZ"),
    ("Link", 5, "REG_LINK"),
    ("MultiString", 6, "REG_MULTI_SZ"),
    ("None", 7, "REG_NONE"),
    ("Qword", 8, "REG_QWORD"),
    ("String", 10, "REG_SZ"),
];

/// DeviceRegistryEvents → Registry Key Activity or Registry Value Activity (Windows
/// extension), chosen by ActionType (`RegistryKey*` / `RegistryValue*`), and for other
/// ActionTypes by whether the row names a value.
pub(super) fn registry_activity(mut ev: Event) -> Mapped {
    let act = action(&ev);
    let key = ev.col_str("RegistryKey")?.to_string();
    if !initiating_actor(&mut ev) {
        return None;
    }
    let is_value = match act.as_deref() {
        Some(a) if a.starts_with("RegistryKey") => false,
        Some(a) if a.starts_with("RegistryValue") => true,
        _ => ev.col_str("RegistryValueName").is_some(),
    };
    ev.take_col(
        "RegistryKey",
        if is_value {
            "reg_value.path"
        } else {
            "reg_key.path"
        },
    );
    if is_value {
        // The default value of a key has an empty name.
        let name = ev.col_str("RegistryValueName").unwrap_or("").to_string();
        ev.take_col("RegistryValueName", "reg_value.name");
        ev.set("reg_value.path", key.clone().into());
        ev.set("reg_value.name", name.clone().into());
        if name.is_empty() {
            ev.set("reg_value.is_default", true.into());
        }
        ev.apply(&[f("RegistryValueData", "reg_value.data", Conv::Str)]);
        if let Some(t) = ev.col_str("RegistryValueType").map(str::to_string) {
            let (id, caption) = VALUE_TYPES
                .iter()
                .find(|(m, _, _)| m.eq_ignore_ascii_case(&t))
                .map(|(_, id, c)| (*id, c.to_string()))
                .unwrap_or((99, t));
            ev.set("reg_value.type_id", id.into());
            ev.set("reg_value.type", caption.into());
            ev.take_col("RegistryValueType", "reg_value.type_id");
        }
        // The value as it was before a change.
        if let Some(prev) = ev.col_str("PreviousRegistryValueName").map(str::to_string) {
            ev.take_col("PreviousRegistryValueName", "prev_reg_value.name");
            let prev_key = match ev.col_str("PreviousRegistryKey").map(str::to_string) {
                Some(k) => {
                    ev.take_col("PreviousRegistryKey", "prev_reg_value.path");
                    k
                }
                None => key,
            };
            ev.set("prev_reg_value.path", prev_key.into());
            ev.set("prev_reg_value.name", prev.into());
            ev.apply(&[f(
                "PreviousRegistryValueData",
                "prev_reg_value.data",
                Conv::Str,
            )]);
        }
        device(&mut ev);
        let (id, name) = activity_of(act.as_deref(), VALUE_ACTIONS);
        ev.classify(REGISTRY_VALUE_ACTIVITY, id, &name, 1);
    } else {
        ev.set("reg_key.path", key.into());
        ev.apply(&[f("PreviousRegistryKey", "prev_reg_key.path", Conv::Str)]);
        device(&mut ev);
        let (id, name) = activity_of(act.as_deref(), KEY_ACTIONS);
        ev.classify(REGISTRY_KEY_ACTIVITY, id, &name, 1);
    }
    Some(ev)
}
