//! Identity & Access Management family: Authentication (3002) for DeviceLogonEvents,
//! IdentityLogonEvents and the Entra ID sign-in tables; Account Change (3001) for
//! IdentityDirectoryEvents.

use super::value::Value;
use super::{action, device, f, initiating_actor, Class, Conv, Event, Field, Mapped};

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
const PROTOCOLS: &[(&str, u32, &str)] = &[
    ("NTLM", 1, "NTLM"),
    ("Kerberos", 2, "Kerberos"),
    ("LDAP", 12, "LDAP"),
];

const ACCOUNT_CHANGE: Class = Class {
    uid: 3001,
    name: "Account Change",
    category_uid: 3,
    category_name: "Identity & Access Management",
};

/// IdentityLogonEvents: the account, the device it came from and the one it went to. The
/// row's `DeviceName` is the source device (not a reporting sensor), so it is `src_endpoint`.
const IDENTITY_LOGON: &[Field] = &[
    f("AccountName", "user.name", Conv::Str),
    f("AccountDomain", "user.domain", Conv::Str),
    f("AccountSid", "user.uid", Conv::Str),
    f("AccountObjectId", "user.uid_alt", Conv::Str),
    f("AccountUpn", "user.email_addr", Conv::Str),
    f("AccountDisplayName", "user.display_name", Conv::Str),
    f("FailureReason", "status_detail", Conv::Str),
    f("DeviceName", "src_endpoint.hostname", Conv::Str),
    f("IPAddress", "src_endpoint.ip", Conv::Ip),
    f("Port", "src_endpoint.port", Conv::Port),
    f("DestinationDeviceName", "dst_endpoint.hostname", Conv::Str),
    f("DestinationIPAddress", "dst_endpoint.ip", Conv::Ip),
    f("DestinationPort", "dst_endpoint.port", Conv::Port),
    f("Application", "service.name", Conv::Str),
];

/// The Entra ID sign-in tables (EntraIdSignInEvents, AADSignInEventsBeta and their service
/// principal variants).
const SIGN_IN: &[Field] = &[
    f("AccountObjectId", "user.uid", Conv::Str),
    f("AccountUpn", "user.name", Conv::Str),
    f("AccountDisplayName", "user.display_name", Conv::Str),
    f("ServicePrincipalId", "user.uid", Conv::Str),
    f("ServicePrincipalName", "user.name", Conv::Str),
    f("ResourceDisplayName", "service.name", Conv::Str),
    f("ResourceId", "service.uid", Conv::Str),
    f("Application", "src_endpoint.svc_name", Conv::Str),
    f("IPAddress", "src_endpoint.ip", Conv::Ip),
    f("Country", "src_endpoint.location.country", Conv::Str),
    f("State", "src_endpoint.location.region", Conv::Str),
    f("City", "src_endpoint.location.city", Conv::Str),
    f("SessionId", "session.uid", Conv::Str),
    f("UserAgent", "http_request.user_agent", Conv::Str),
    f("ErrorCode", "status_code", Conv::Str),
];

/// IdentityDirectoryEvents: the account changed (`user`) and who changed it (`actor.user`).
const DIRECTORY: &[Field] = &[
    f("TargetAccountUpn", "user.name", Conv::Str),
    f("TargetAccountDisplayName", "user.display_name", Conv::Str),
    f("AccountName", "actor.user.name", Conv::Str),
    f("AccountDomain", "actor.user.domain", Conv::Str),
    f("AccountSid", "actor.user.uid", Conv::Str),
    f("AccountObjectId", "actor.user.uid_alt", Conv::Str),
    f("AccountUpn", "actor.user.email_addr", Conv::Str),
    f("AccountDisplayName", "actor.user.display_name", Conv::Str),
    f("DeviceName", "src_endpoint.hostname", Conv::Str),
    f("IPAddress", "src_endpoint.ip", Conv::Ip),
    f("Port", "src_endpoint.port", Conv::Port),
];

/// IdentityDirectoryEvents ActionTypes (Defender for Identity's captions) → Account Change
/// activity.
const DIRECTORY_ACTIONS: &[(&str, u32, &str)] = &[
    ("Account Password changed", 3, "Password Change"),
    ("Account Password Never Expires changed", 99, "Other"),
    ("Account Password reset", 4, "Password Reset"),
    ("Account Disabled", 5, "Disable"),
    ("Account Enabled", 2, "Enable"),
    ("Account Deleted", 6, "Delete"),
    ("Account Created", 1, "Create"),
    ("Account Locked", 9, "Lock"),
    ("Account Unlocked", 12, "Unlock"),
];

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
    auth_protocol(&mut ev);
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

/// Moves the device the row names (placed by the common columns as `device`) out again: in
/// the Identity tables `DeviceName` is the peer of the logon, not a reporting host.
fn not_the_host(ev: &mut Event) {
    if ev.get("device").is_some() {
        ev.drop_path("device");
    }
}

fn auth_protocol(ev: &mut Event) {
    if let Some(p) = ev.col_str("Protocol").map(str::to_string) {
        let (id, caption) = lookup(PROTOCOLS, &p);
        ev.take_col("Protocol", "auth_protocol_id");
        ev.set("auth_protocol_id", id.into());
        ev.set("auth_protocol", caption.into());
    }
}

/// IdentityLogonEvents → Authentication (Logon): `LogonSuccess` / `LogonFailed` give the
/// status; `LogonType` (`Resource access`, `Credentials validation`, …) is 99 Other with the
/// text as caption unless it is a Windows logon type.
pub(super) fn identity_logon(mut ev: Event) -> Mapped {
    let act = action(&ev);
    not_the_host(&mut ev);
    ev.apply(IDENTITY_LOGON);
    if let Some(t) = ev.col_str("LogonType").map(str::to_string) {
        let (id, caption) = lookup(LOGON_TYPES, &t);
        ev.take_col("LogonType", "logon_type_id");
        ev.set("logon_type_id", id.into());
        ev.set("logon_type", caption.into());
    }
    auth_protocol(&mut ev);
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

/// The Entra ID sign-in tables → Authentication (Logon): `ErrorCode` 0 is Success, any other
/// Failure (the code is `status_code`); the resource signed in to is the `service`.
pub(super) fn sign_in(mut ev: Event) -> Mapped {
    not_the_host(&mut ev);
    let status = match ev.props.get("ErrorCode") {
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Some(1),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(2),
        _ => None,
    };
    ev.apply(SIGN_IN);
    ev.classify(AUTHENTICATION, 1, "Logon", 1);
    if let Some(s) = status {
        ev.status(s);
    }
    Some(ev)
}

/// IdentityDirectoryEvents → Account Change, activity from the ActionType (99 Other with the
/// ActionType as caption for the group, SPN and attribute changes Account Change has no
/// activity for).
pub(super) fn account_change(mut ev: Event) -> Mapped {
    let act = action(&ev);
    not_the_host(&mut ev);
    ev.apply(DIRECTORY);
    let (id, name) = match act.as_deref() {
        Some(a) => DIRECTORY_ACTIONS
            .iter()
            .find(|(t, _, _)| t.eq_ignore_ascii_case(a))
            .map(|(_, id, c)| (*id, if *id == 99 { a } else { c }.to_string()))
            .unwrap_or((99, a.to_string())),
        None => (0, "Unknown".to_string()),
    };
    ev.classify(ACCOUNT_CHANGE, id, &name, 1);
    Some(ev)
}
