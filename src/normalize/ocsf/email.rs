//! Email family (Defender for Office 365): Email Activity (4009) for EmailEvents, Email File
//! Activity (4011) for EmailAttachmentInfo, Email URL Activity (4012) for EmailUrlInfo, and Web
//! Resources Activity (6001) for UrlClickEvents (a click is a user opening a web resource; it
//! comes from mail, Teams or Office documents, so it is not an email activity).

use super::{action, f, Class, Conv, Event, Field, Mapped};

const fn network(uid: u32, name: &'static str) -> Class {
    Class {
        uid,
        name,
        category_uid: 4,
        category_name: "Network Activity",
    }
}

const EMAIL_ACTIVITY: Class = network(4009, "Email Activity");
const EMAIL_FILE_ACTIVITY: Class = network(4011, "Email File Activity");
const EMAIL_URL_ACTIVITY: Class = network(4012, "Email URL Activity");
const WEB_RESOURCES_ACTIVITY: Class = Class {
    uid: 6001,
    name: "Web Resources Activity",
    category_uid: 6,
    category_name: "Application Activity",
};

/// EmailEvents: the message.
const MESSAGE: &[Field] = &[
    f("NetworkMessageId", "email.uid", Conv::Str),
    f("InternetMessageId", "email.message_uid", Conv::Str),
    f("SenderFromAddress", "email.from", Conv::Str),
    f("RecipientEmailAddress", "email.to", Conv::StrList),
    f("Subject", "email.subject", Conv::Str),
    f("SenderIPv4", "src_endpoint.ip", Conv::Ip),
    f("SenderIPv6", "src_endpoint.ip", Conv::Ip),
    f("SenderFromDomain", "src_endpoint.domain", Conv::Str),
];

/// `EmailDirection` → (`direction_id`, caption, `activity_id`, caption): mail coming in is
/// received, mail going out (or within the organization) is sent.
fn direction(d: Option<&str>) -> (u32, String, u32, &'static str) {
    match d {
        Some("Inbound") => (1, "Inbound".into(), 2, "Receive"),
        Some("Outbound") => (2, "Outbound".into(), 1, "Send"),
        Some("Intra-org") => (3, "Internal".into(), 1, "Send"),
        Some(other) => (99, other.into(), 0, "Unknown"),
        None => (0, "Unknown".into(), 0, "Unknown"),
    }
}

/// EmailEvents → Email Activity. `direction_id` is required: 0 Unknown when the row has no
/// `EmailDirection`.
pub(super) fn email_activity(mut ev: Event) -> Mapped {
    ev.apply(MESSAGE);
    let dir = ev.col_str("EmailDirection").map(str::to_string);
    let (dir_id, dir_name, act_id, act) = direction(dir.as_deref());
    if dir.is_some() {
        ev.take_col("EmailDirection", "direction_id");
        ev.set("direction", dir_name.into());
    }
    ev.set("direction_id", dir_id.into());
    ev.classify(EMAIL_ACTIVITY, act_id, act, 1);
    Some(ev)
}

/// EmailAttachmentInfo: the attached file.
const ATTACHMENT: &[Field] = &[
    f("NetworkMessageId", "email_uid", Conv::Str),
    f("FileName", "file.name", Conv::Str),
    f("SHA256", "file.hashes", Conv::Hash(3)),
    f("FileSize", "file.size", Conv::Int),
];

/// EmailAttachmentInfo → Email File Activity (Scan: the row is Defender's analysis of an
/// attachment; sender and recipient stay in `unmapped`, the class has no email object).
pub(super) fn email_file_activity(mut ev: Event) -> Mapped {
    ev.apply(ATTACHMENT);
    ev.classify(EMAIL_FILE_ACTIVITY, 3, "Scan", 1);
    Some(ev)
}

/// EmailUrlInfo: a URL found in a message.
const MAIL_URL: &[Field] = &[
    f("NetworkMessageId", "email_uid", Conv::Str),
    f("Url", "url.url_string", Conv::Str),
    f("UrlDomain", "url.hostname", Conv::Str),
];

/// EmailUrlInfo → Email URL Activity (Scan).
pub(super) fn email_url_activity(mut ev: Event) -> Mapped {
    ev.apply(MAIL_URL);
    ev.classify(EMAIL_URL_ACTIVITY, 3, "Scan", 1);
    Some(ev)
}

/// UrlClickEvents: the URL clicked, who clicked it and from where.
const CLICK: &[Field] = &[
    f("Url", "web_resources.0.url_string", Conv::Str),
    f("Url", "web_resources.0.name", Conv::Str),
    f("AccountUpn", "actor.user.name", Conv::Str),
    f("IPAddress", "src_endpoint.ip", Conv::Ip),
];

/// UrlClickEvents → Web Resources Activity (Read). `ClickAllowed` is Success, `ClickBlocked`
/// Failure (the click did not go through).
pub(super) fn url_click(mut ev: Event) -> Mapped {
    let act = action(&ev);
    ev.apply(CLICK);
    ev.classify(WEB_RESOURCES_ACTIVITY, 2, "Read", 1);
    match act.as_deref() {
        Some("ClickAllowed") => ev.status(1),
        Some("ClickBlocked") => ev.status(2),
        _ => {}
    }
    Some(ev)
}
