//! OCSF output (`--format ocsf`, `RELAY_FORMAT=ocsf`): one row becomes one event of the Open
//! Cybersecurity Schema Framework, version [`OCSF_VERSION`]. `docs/ocsf.md` documents the mapping
//! field by field.
//!
//! The mapping is data: every class family has a table of [`Field`]s (column → OCSF attribute
//! path, with a conversion) in its own module — [`system`] (process, file, module, script,
//! registry), [`network`] (network, DNS), [`iam`] (authentication), [`findings`] (detection) —
//! and a few lines of code for what a table cannot say (activity from `ActionType`, direction,
//! enum captions). Whatever a class has no place for stays in `unmapped`, keyed by its column
//! name: no column is dropped.
//!
//! Unlike the other formats the event is built as a tree before it is written (its shape
//! depends on the row), but not of `serde_json::Value`s: [`value::Value`] borrows its strings
//! from the row, objects are sorted `Vec`s, a placed column is only marked taken in the row
//! ([`builder::Props`]), and the event is written straight into the output buffer with the
//! same bytes `serde_json` would write. `docs/benchmarks.md` has the cost next to `normalized`.
//!
//! Every event is valid OCSF whatever the row holds: values convert only when they fit the
//! attribute's type and range ([`Conv`]), and before an event is written [`valid`] takes out
//! every object that breaks its type's rule (a `process` without `pid`/`uid`/`cpid`, a
//! `product` without name, an endpoint without address …), giving its columns back to
//! `unmapped`. A row that then cannot fill what its class requires becomes a Base Event with
//! everything under `unmapped`.

mod actor;
mod application;
mod builder;
mod discovery;
mod email;
mod findings;
mod iam;
pub(crate) mod network;
mod path;
mod props;
mod scan;
mod system;
mod valid;
mod value;
mod write;

pub(crate) use actor::{initiating_actor, integrity};
pub(crate) use builder::{f, Class, Conv, Event, Field};

use super::normalize_timestamp;
use crate::event::EventId;
use crate::rows::Row;
use crate::tables;
use builder::Props;
use std::borrow::Cow;
use value::{Obj, Value};

/// OCSF schema version of every event (`metadata.version`).
pub const OCSF_VERSION: &str = "1.5.0";
/// `metadata.product.name`.
pub const PRODUCT_NAME: &str = "Microsoft Defender for Endpoint";
/// `metadata.product.vendor_name`.
pub const VENDOR_NAME: &str = "Microsoft";

/// Columns every row shares (besides `Timestamp`, which [`new_event`] handles).
const COMMON: &[Field] = &[
    f("DeviceId", "device.uid", Conv::Str),
    f("DeviceName", "device.hostname", Conv::Str),
    f("MachineGroup", "device.groups", Conv::Group),
    f("ActionType", "metadata.event_code", Conv::Str),
];

pub(crate) const BASE_EVENT: Class = Class {
    uid: 0,
    name: "Base Event",
    category_uid: 0,
    category_name: "Uncategorized",
};

/// Milliseconds since the epoch of an export timestamp, the fraction rounded once (half up)
/// from its digits: `.0994999` is 99 ms, `.0995` 100.
pub(crate) fn time_ms(s: &str) -> Option<i64> {
    let norm = normalize_timestamp(s)?;
    super::time::unix_millis(&norm)
}

/// `metadata.product`.
fn product<'a>() -> Value<'a> {
    Value::Object(Obj::from_sorted(vec![
        (Cow::Borrowed("name"), PRODUCT_NAME.into()),
        (Cow::Borrowed("vendor_name"), VENDOR_NAME.into()),
    ]))
}

/// The event of a row with the metadata, `time` and [`COMMON`] columns placed; `None` when
/// `properties` is not a JSON object.
fn new_event<'a>(row: &'a Row<'_>, table: &'a str, id: &'a EventId) -> Option<Event<'a>> {
    // One UTF-8 check for the whole object, not one per string.
    let text = std::str::from_utf8(row.properties).ok()?;
    let members = scan::members(text).or_else(|| value::parse_members(text))?;
    let mut props = Props::from_members(members, row.shape);
    // Decode JSON-in-string columns so `unmapped` carries them as JSON and the class
    // mappings can read inside `AdditionalFields`.
    let info = tables::lookup(table);
    for (name, value) in props.iter_mut() {
        if let Value::String(text) = value {
            let t = text.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                let is_json = match info {
                    Some(i) => i.is_json_column(name),
                    None => name == tables::ADDITIONAL_FIELDS,
                };
                if is_json {
                    if let Some(v) = value::parse_owned(t) {
                        *value = v;
                    }
                }
            }
        }
    }
    let mut ev = Event::empty(props, id.as_str());
    let mut metadata = Obj::new();
    metadata.insert("version", OCSF_VERSION.into());
    metadata.insert("product", product());
    metadata.insert("uid", ev.id.into());
    metadata.insert("log_name", table.into());
    // `device` and `actor` come from the host profile on most classes.
    metadata.insert("profiles", Value::Array(vec!["host".into()]));
    if let Some(t) = row.tenant_id.as_deref() {
        metadata.insert("tenant_uid", t.into());
    }
    if let Some(ms) = row.time.as_deref().and_then(time_ms) {
        metadata.insert("logged_time", ms.into());
    }
    ev.obj.insert("metadata", Value::Object(metadata));
    // `time` is required: the event's Timestamp, else the export time, else 0.
    let ts = match ev.props.get("Timestamp") {
        Some(Value::String(s)) => time_ms(s),
        _ => None,
    };
    let time = match ts {
        Some(ms) => {
            if let Some(text) = ev.take_col("Timestamp", "metadata.original_time") {
                ev.set("metadata.original_time", text);
            }
            ms
        }
        None => row.time.as_deref().and_then(time_ms).unwrap_or(0),
    };
    ev.obj.insert("time", time.into());
    ev.apply(COMMON);
    Some(ev)
}

/// Finishes a mapped event (the OCSF rules); `None` when the class's own requirements are no
/// longer met.
fn finish(mut ev: Event<'_>) -> Option<Event<'_>> {
    valid::finish(&mut ev).then_some(ev)
}

/// What a class mapping decided: emit the event, or fall back to a Base Event.
pub(crate) type Mapped<'a> = Option<Event<'a>>;

/// Builds the OCSF event of `row` and writes it as JSON into `out`.
pub(crate) fn write_event(row: &Row<'_>, table: &str, id: &EventId, out: &mut Vec<u8>) {
    build_event(row, table, id).write(out);
}

/// Builds the OCSF event of `row` as a JSON value.
pub fn build(row: &Row<'_>, table: &str, id: &EventId) -> serde_json::Value {
    build_event(row, table, id).to_json()
}

/// Builds the OCSF event of `row`.
fn build_event<'a>(row: &'a Row<'_>, table: &'a str, id: &'a EventId) -> Event<'a> {
    let Some(ev) = new_event(row, table, id) else {
        return base_event_of(row, table, id);
    };
    let action = action(&ev);
    let mapped = match table {
        "DeviceProcessEvents" => system::process_activity(ev),
        "DeviceFileEvents" => system::file_activity(ev),
        "DeviceImageLoadEvents" => system::module_activity(ev),
        "DeviceRegistryEvents" => system::registry_activity(ev),
        "DeviceNetworkEvents" => network::network_activity(ev),
        "DeviceLogonEvents" => iam::authentication(ev),
        "DeviceEvents" => match action.as_deref() {
            Some("PowerShellCommand") => system::script_activity(ev),
            Some("DnsQueryResponse") => network::dns_activity(ev),
            Some("AntivirusDetection") => findings::detection_finding(ev),
            _ => Some(base_event(ev)),
        },
        "AlertInfo" | "BehaviorInfo" => findings::alert_finding(ev, false),
        "AlertEvidence" | "BehaviorEntities" => findings::alert_finding(ev, true),
        "IdentityLogonEvents" => iam::identity_logon(ev),
        "EntraIdSignInEvents"
        | "EntraIdSpnSignInEvents"
        | "AADSignInEventsBeta"
        | "AADSpnSignInEventsBeta" => iam::sign_in(ev),
        "IdentityDirectoryEvents" => iam::account_change(ev),
        "EmailEvents" => email::email_activity(ev),
        "EmailAttachmentInfo" => email::email_file_activity(ev),
        "EmailUrlInfo" => email::email_url_activity(ev),
        "UrlClickEvents" => email::url_click(ev),
        "CloudAppEvents" => application::api_activity(ev),
        "DeviceInfo" => discovery::device_info(ev),
        "DeviceNetworkInfo" => discovery::network_info(ev),
        _ => Some(base_event(ev)),
    };
    match mapped.and_then(finish) {
        Some(ev) => ev,
        None => base_event_of(row, table, id),
    }
}

/// A Base Event: common fields placed, the rest of the row under `unmapped`.
fn base_event(mut ev: Event<'_>) -> Event<'_> {
    // The host profile's `device` only makes sense when the row names a device (else
    // [`valid`] takes it out).
    device(&mut ev);
    let action = ev.get("metadata.event_code").and_then(Value::as_str);
    let (id, name) = match action {
        Some(a) => (99, a.to_string()),
        None => (0, "Unknown".to_string()),
    };
    ev.classify(BASE_EVENT, id, &name, 1);
    ev
}

/// The fallback for a row a class mapping could not fill: a Base Event from scratch.
fn base_event_of<'a>(row: &'a Row<'_>, table: &'a str, id: &'a EventId) -> Event<'a> {
    let ev = new_event(row, table, id).unwrap_or_else(|| {
        // Unreachable in practice: the row parser only passes rows whose `properties` is an
        // object. Still an event rather than a panic, with the bytes kept.
        let mut props = Props::default();
        props.insert(
            "properties",
            String::from_utf8_lossy(row.properties).into_owned().into(),
        );
        let mut metadata = Obj::new();
        metadata.insert("version", OCSF_VERSION.into());
        metadata.insert("product", product());
        metadata.insert("uid", id.as_str().into());
        metadata.insert("log_name", table.into());
        let mut ev = Event::empty(props, id.as_str());
        ev.obj.insert("metadata", Value::Object(metadata));
        ev.obj.insert("time", 0.into());
        ev
    });
    let mut ev = base_event(ev);
    // A Base Event has no requirement beyond what every event carries.
    valid::finish(&mut ev);
    ev
}

/// The activity for an `ActionType` from a class's table: (`activity_id`, caption), or 99
/// Other captioned with the ActionType itself.
pub(crate) fn activity_of(
    action: Option<&str>,
    table: &[(&str, u32, &'static str)],
) -> (u32, String) {
    match action {
        Some(a) => table
            .iter()
            .find(|(t, _, _)| *t == a)
            .map(|(_, id, c)| (*id, (*c).to_string()))
            .unwrap_or((99, a.to_string())),
        None => (0, "Unknown".to_string()),
    }
}

/// The row's ActionType (already placed as `metadata.event_code`).
pub(crate) fn action(ev: &Event<'_>) -> Option<String> {
    ev.get("metadata.event_code")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Ensures `device` carries its required `type_id` (0, Unknown: an event row does not say
/// what kind of device it came from).
pub(crate) fn device(ev: &mut Event<'_>) {
    ev.set("device.type_id", 0.into());
}

#[cfg(test)]
mod tests;
