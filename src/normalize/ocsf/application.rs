//! Application Activity family: API Activity (6003) for CloudAppEvents (Defender for Cloud
//! Apps: an operation a user or app performed through a cloud service's API).

use super::{action, f, Class, Conv, Event, Field, Mapped};

const API_ACTIVITY: Class = Class {
    uid: 6003,
    name: "API Activity",
    category_uid: 6,
    category_name: "Application Activity",
};

/// CloudAppEvents: who (`actor.user`), what (`api.operation` is the ActionType, the service is
/// the application; set from the ActionType), from where (`src_endpoint`), on what (`resources`).
const CLOUD_APP: &[Field] = &[
    f("Application", "api.service.name", Conv::Str),
    f("ApplicationId", "api.service.uid", Conv::Str),
    f("AccountObjectId", "actor.user.uid", Conv::Str),
    f("AccountId", "actor.user.uid_alt", Conv::Str),
    f("AccountDisplayName", "actor.user.display_name", Conv::Str),
    f("IPAddress", "src_endpoint.ip", Conv::Ip),
    f("CountryCode", "src_endpoint.location.country", Conv::Str),
    f("City", "src_endpoint.location.city", Conv::Str),
    f("Isp", "src_endpoint.location.isp", Conv::Str),
    f("UserAgent", "http_request.user_agent", Conv::Str),
    f("ObjectName", "resources.0.name", Conv::Str),
    f("ObjectId", "resources.0.uid", Conv::Str),
    f("ObjectType", "resources.0.type", Conv::Str),
];

/// Defender for Cloud Apps' `ActivityType` → API Activity's activity.
const ACTIVITY_TYPES: &[(&str, u32, &str)] = &[
    ("Create", 1, "Create"),
    ("Upload", 1, "Create"),
    ("Read", 2, "Read"),
    ("View", 2, "Read"),
    ("Download", 2, "Read"),
    ("Edit", 3, "Update"),
    ("Update", 3, "Update"),
    ("Delete", 4, "Delete"),
];

/// CloudAppEvents → API Activity. The class requires `actor`, `api` and `src_endpoint`: a row
/// without an account id or an IP address becomes a Base Event.
pub(super) fn api_activity(mut ev: Event) -> Mapped {
    // The ActionType (already `metadata.event_code`) is the operation OCSF requires.
    if let Some(op) = action(&ev) {
        ev.set("api.operation", op.into());
    }
    ev.apply(CLOUD_APP);
    let (id, name) = match ev.col_str("ActivityType").map(str::to_string) {
        Some(t) => match ACTIVITY_TYPES
            .iter()
            .find(|(m, _, _)| m.eq_ignore_ascii_case(&t))
        {
            Some((_, id, c)) => (*id, c.to_string()),
            None => (99, t),
        },
        None => (0, "Unknown".to_string()),
    };
    ev.classify(API_ACTIVITY, id, &name, 1);
    Some(ev)
}
