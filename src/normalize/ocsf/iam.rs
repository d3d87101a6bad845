//! Identity & Access Management family: Authentication (3002) for DeviceLogonEvents.

use super::{action, device, f, initiating_actor, Class, Conv, Event, Field, Mapped};
use serde_json::Value;

const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: 3,
    category_name: "Identity & Access Management",
};

/// The account that logged on, the session, and the remote peer of network logons.
const LOGON: &[Field] = &[
    f("AccountName", "user.name", Conv::Str),
    f("AccountDomain", "user.domain", Conv::Str),
    f("AccountSid", "user.uid", Conv::Str),
    f("LogonId", "session.uid", Conv::Str),
    f("FailureReason", "status_detail", Conv::Str),
    f("RemoteIP", "src_endpoint.ip", Conv::Ip),
    f("RemotePort", "src_endpoint.port", Conv::Port),
    f("RemoteDeviceName", "src_endpoint.hostname", Conv::Str),
];

/// MDE `LogonType` → OCSF `logon_type_id` and its caption.
const LOGON_TYPES: &[(&str, u32, &str)] = &[
    ("Interactive", 2, "Interactive"),
    ("Network", 3, "Network"),
    ("Batch", 4, "Batch"),
    ("Service", 5, "OS Service"),
    ("Unlock", 7, "Unlock"),
    ("NetworkCleartext", 8, "Network Cleartext"),
    ("NewCredentials", 9, "New Credentials"),
    ("RemoteInteractive", 10, "Remote Interactive"),
    ("CachedInteractive", 11, "Cached Interactive"),
    ("CachedRemoteInteractive", 12, "Cached Remote Interactive"),
    ("CachedUnlock", 13, "Cached Unlock"),
];

/// MDE `Protocol` → OCSF `auth_protocol_id` (Negotiate picks NTLM or Kerberos at run time, so
/// it is Other).
const PROTOCOLS: &[(&str, u32, &str)] = &[("NTLM", 1, "NTLM"), ("Kerberos", 2, "Kerberos")];

fn lookup(table: &[(&str, u32, &'static str)], v: &str) -> (u32, String) {
    table
        .iter()
        .find(|(m, _, _)| m.eq_ignore_ascii_case(v))
        .map(|(_, id, c)| (*id, c.to_string()))
        .unwrap_or((99, v.to_string()))
}

/// DeviceLogonEvents → Authentication. Every logon ActionType is activity Logon; success or
/// failure is the status (`LogonSuccess` 1, `LogonFailed` 2; `LogonAttempted` has none: the
/// outcome is not known), never Logoff.
pub(super) fn authentication(mut ev: Event) -> Mapped {
    let act = action(&ev);
    ev.apply(LOGON);
    if !ev.has_any("user", &["name", "uid"]) {
        return None;
    }
    if let Some(t) = ev.col_str("LogonType").map(str::to_string) {
        let (id, caption) = lookup(LOGON_TYPES, &t);
        ev.take_col("LogonType", "logon_type_id");
        ev.set("logon_type_id", id.into());
        ev.set("logon_type", caption.into());
    }
    if let Some(p) = ev.col_str("Protocol").map(str::to_string) {
        let (id, caption) = lookup(PROTOCOLS, &p);
        ev.take_col("Protocol", "auth_protocol_id");
        ev.set("auth_protocol_id", id.into());
        ev.set("auth_protocol", caption.into());
    }
    if let Some(Value::Bool(local)) = ev.additional("IsLocalLogon").cloned() {
        ev.take_additional("IsLocalLogon", "is_remote");
        ev.set("is_remote", (!local).into());
    }
    initiating_actor(&mut ev);
    // Authentication needs a `service` or a `dst_endpoint`: the logon is to this device.
    for (from, to) in [
        ("device.hostname", "dst_endpoint.hostname"),
        ("device.uid", "dst_endpoint.uid"),
    ] {
        if let Some(v) = ev.get(from).cloned() {
            ev.set(to, v);
        }
    }
    ev.get("dst_endpoint")?;
    device(&mut ev);
    let (id, name) = match act.as_deref() {
        Some("LogonSuccess" | "LogonFailed" | "LogonAttempted") | None => (1, "Logon".to_string()),
        Some(other) => (99, other.to_string()),
    };
    ev.classify(AUTHENTICATION, id, &name, 1);
    match act.as_deref() {
        Some("LogonSuccess") => ev.status(1),
        Some("LogonFailed") => ev.status(2),
        _ => {}
    }
    Some(ev)
}
