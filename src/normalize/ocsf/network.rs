//! Network Activity family: Network Activity (4001) for DeviceNetworkEvents and DNS Activity
//! (4003) for DeviceEvents `DnsQueryResponse`.

use super::{action, activity_of, device, f, initiating_actor, Class, Conv, Event, Field, Mapped};
use serde_json::Value;

const fn network(uid: u32, name: &'static str) -> Class {
    Class {
        uid,
        name,
        category_uid: 4,
        category_name: "Network Activity",
    }
}

const NETWORK_ACTIVITY: Class = network(4001, "Network Activity");
const DNS_ACTIVITY: Class = network(4003, "DNS Activity");

/// Outbound (and unknown direction): the device is the source.
const OUTBOUND: &[Field] = &[
    f("LocalIP", "src_endpoint.ip", Conv::Str),
    f("LocalPort", "src_endpoint.port", Conv::Int),
    f("RemoteIP", "dst_endpoint.ip", Conv::Str),
    f("RemotePort", "dst_endpoint.port", Conv::Int),
];

/// Inbound: the remote peer is the source.
const INBOUND: &[Field] = &[
    f("RemoteIP", "src_endpoint.ip", Conv::Str),
    f("RemotePort", "src_endpoint.port", Conv::Int),
    f("LocalIP", "dst_endpoint.ip", Conv::Str),
    f("LocalPort", "dst_endpoint.port", Conv::Int),
];

const URL: &[Field] = &[f("RemoteUrl", "url.url_string", Conv::Str)];

/// ActionType → (activity_id, caption, status_id).
const NETWORK_ACTIONS: &[(&str, u32, &str)] = &[
    ("ConnectionSuccess", 1, "Open"),
    ("ConnectionRequest", 1, "Open"),
    ("ConnectionAttempt", 1, "Open"),
    ("ConnectionAcknowledged", 1, "Open"),
    ("InboundConnectionAccepted", 1, "Open"),
    ("ConnectionFailed", 4, "Fail"),
    ("ListeningConnectionCreated", 7, "Listen"),
    ("ConnectionFound", 6, "Traffic"),
    ("DnsConnectionInspected", 6, "Traffic"),
    ("HttpConnectionInspected", 6, "Traffic"),
    ("SslConnectionInspected", 6, "Traffic"),
    ("SshConnectionInspected", 6, "Traffic"),
    ("IcmpConnectionInspected", 6, "Traffic"),
    ("NetworkSignatureInspected", 6, "Traffic"),
];

/// `connection_info.direction_id`: from `AdditionalFields.direction` (`In`/`Out`) when the
/// row has it, else from the ActionType (only `InboundConnectionAccepted` is inbound; MDE's
/// connection ActionTypes describe connections the device opened), else Unknown.
fn direction(ev: &Event, act: Option<&str>) -> (u32, &'static str) {
    match ev.additional("direction").and_then(Value::as_str) {
        Some(d) if d.eq_ignore_ascii_case("in") => return (1, "Inbound"),
        Some(d) if d.eq_ignore_ascii_case("out") => return (2, "Outbound"),
        _ => {}
    }
    match act {
        Some("InboundConnectionAccepted") => (1, "Inbound"),
        Some(
            "ConnectionSuccess"
            | "ConnectionRequest"
            | "ConnectionAttempt"
            | "ConnectionFailed"
            | "ConnectionAcknowledged",
        ) => (2, "Outbound"),
        _ => (0, "Unknown"),
    }
}

/// IANA protocol numbers of the `Protocol` values MDE writes.
fn protocol_num(p: &str) -> Option<u32> {
    let p = p.to_ascii_lowercase();
    Some(match p.as_str() {
        "tcp" | "tcpv4" | "tcpv6" => 6,
        "udp" | "udpv4" | "udpv6" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        "igmp" => 2,
        _ => return None,
    })
}

/// DeviceNetworkEvents → Network Activity.
pub(super) fn network_activity(mut ev: Event) -> Mapped {
    let act = action(&ev);
    initiating_actor(&mut ev);
    let (dir_id, dir) = direction(&ev, act.as_deref());
    if ev.additional("direction").is_some() {
        ev.take_additional("direction");
    }
    ev.set("connection_info.direction_id", dir_id.into());
    ev.set("connection_info.direction", dir.into());
    if let Some(p) = ev.col_str("Protocol").map(str::to_string) {
        ev.props.remove("Protocol");
        if let Some(n) = protocol_num(&p) {
            ev.set("connection_info.protocol_num", n.into());
        }
        ev.set(
            "connection_info.protocol_name",
            p.to_ascii_lowercase().into(),
        );
    }
    // A listening socket has no peer: MDE writes 0.0.0.0/0 there, which stays in `unmapped`.
    let listening = act.as_deref() == Some("ListeningConnectionCreated");
    if listening {
        ev.apply(&[
            f("LocalIP", "src_endpoint.ip", Conv::Str),
            f("LocalPort", "src_endpoint.port", Conv::Int),
        ]);
    } else {
        ev.apply(if dir_id == 1 { INBOUND } else { OUTBOUND });
    }
    ev.apply(URL);
    if !ev.has_any("actor", &["process", "user"]) {
        if let Some(Value::Object(o)) = ev.get_mut("actor") {
            o.clear();
        }
        ev.obj.remove("actor");
    }
    device(&mut ev);
    let (id, name) = activity_of(act.as_deref(), NETWORK_ACTIONS);
    ev.classify(NETWORK_ACTIVITY, id, &name, 1);
    match act.as_deref() {
        Some("ConnectionSuccess" | "InboundConnectionAccepted") => ev.status(1),
        Some("ConnectionFailed") => ev.status(2),
        _ => {}
    }
    Some(ev)
}

/// DNS record type numbers (RFC 1035 and successors) and their names.
const RR_TYPES: &[(u64, &str)] = &[
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (64, "SVCB"),
    (65, "HTTPS"),
];

/// The answer records of a `DnsQueryResponse` row: `AdditionalFields.DnsQueryResult` is a list
/// (sometimes JSON text again) of strings or of objects with `DnsQueryResultRecord` and
/// `DnsQueryType`. Returns the answers and whether they hold everything the list held (if not,
/// the list also stays in `unmapped`).
fn answers(v: &Value) -> Option<(Vec<Value>, bool)> {
    let list = match v {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    let mut out = Vec::new();
    let mut complete = true;
    for item in list.as_array()? {
        match item {
            Value::String(s) => out.push(serde_json::json!({ "rdata": s })),
            Value::Object(o) => {
                let rdata = o.get("DnsQueryResultRecord").and_then(Value::as_str)?;
                let mut answer = serde_json::json!({ "rdata": rdata });
                let code = o.get("DnsQueryType").and_then(Value::as_u64);
                match code.and_then(|c| RR_TYPES.iter().find(|(n, _)| *n == c)) {
                    Some((_, name)) => answer["type"] = (*name).into(),
                    None => complete = false,
                }
                complete &= o
                    .keys()
                    .all(|k| k == "DnsQueryResultRecord" || k == "DnsQueryType");
                out.push(answer);
            }
            _ => return None,
        }
    }
    Some((out, complete))
}

/// DeviceEvents `DnsQueryResponse` → DNS Activity (Response): the name asked is in
/// `AdditionalFields.DnsQueryString`, the answers in `AdditionalFields.DnsQueryResult`.
pub(super) fn dns_activity(mut ev: Event) -> Mapped {
    let hostname = match ev.additional("DnsQueryString") {
        Some(Value::String(h)) if !h.is_empty() => h.clone(),
        _ => return None,
    };
    ev.take_additional("DnsQueryString");
    ev.set("query.hostname", hostname.into());
    if let Some((list, complete)) = ev.additional("DnsQueryResult").and_then(answers) {
        if complete {
            ev.take_additional("DnsQueryResult");
        }
        ev.set("answers", Value::Array(list));
    }
    initiating_actor(&mut ev);
    if !ev.has_any("actor", &["process", "user"]) {
        ev.obj.remove("actor");
    }
    ev.apply(&[
        f("RemoteIP", "dst_endpoint.ip", Conv::Str),
        f("RemotePort", "dst_endpoint.port", Conv::Int),
        f("LocalIP", "src_endpoint.ip", Conv::Str),
        f("LocalPort", "src_endpoint.port", Conv::Int),
    ]);
    device(&mut ev);
    ev.classify(DNS_ACTIVITY, 2, "Response", 1);
    Some(ev)
}
