//! Network Activity family: Network Activity (4001) for DeviceNetworkEvents and DNS Activity
//! (4003) for DeviceEvents `DnsQueryResponse`.

use super::value::Value;
use super::{action, device, f, initiating_actor, Class, Conv, Event, Field, Mapped};
use serde_json::Value as JsonValue;

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
    f("LocalIP", "src_endpoint.ip", Conv::Ip),
    f("LocalPort", "src_endpoint.port", Conv::Port),
    f("RemoteIP", "dst_endpoint.ip", Conv::Ip),
    f("RemotePort", "dst_endpoint.port", Conv::Port),
];

/// Inbound: the remote peer is the source.
const INBOUND: &[Field] = &[
    f("RemoteIP", "src_endpoint.ip", Conv::Ip),
    f("RemotePort", "src_endpoint.port", Conv::Port),
    f("LocalIP", "dst_endpoint.ip", Conv::Ip),
    f("LocalPort", "dst_endpoint.port", Conv::Port),
];

const URL: &[Field] = &[f("RemoteUrl", "url.url_string", Conv::Str)];

/// Which side of a connection the device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Not known: the device is written as the source (MDE reports the device's sockets).
    Unknown,
    /// The remote peer connected to the device: the remote side is the source.
    In,
    /// The device connected out: the device is the source.
    Out,
}

impl Dir {
    fn ocsf(self) -> (u32, &'static str) {
        match self {
            Dir::Unknown => (0, "Unknown"),
            Dir::In => (1, "Inbound"),
            Dir::Out => (2, "Outbound"),
        }
    }
}

/// What one DeviceNetworkEvents ActionType means in OCSF.
pub(crate) struct NetAction {
    pub action: &'static str,
    pub activity_id: u32,
    pub activity: &'static str,
    pub dir: Dir,
    /// `status_id` when the ActionType states the outcome.
    pub status: Option<u32>,
}

const fn na(
    action: &'static str,
    activity_id: u32,
    activity: &'static str,
    dir: Dir,
    status: Option<u32>,
) -> NetAction {
    NetAction {
        action,
        activity_id,
        activity,
        dir,
        status,
    }
}

/// Every DeviceNetworkEvents ActionType of the published documentation (and those seen in
/// real exports), documented in `docs/ocsf.md`. The connection events describe sockets the
/// device opened unless their name says `Inbound`; the network-protection inspections
/// (`*Inspected`) report traffic seen on a connection, whose direction is in
/// `AdditionalFields.direction` when the row has it.
pub(crate) const NETWORK_ACTIONS: &[NetAction] = &[
    na("ConnectionSuccess", 1, "Open", Dir::Out, Some(1)),
    na("ConnectionRequest", 1, "Open", Dir::Out, None),
    na("ConnectionAttempt", 1, "Open", Dir::Out, None),
    na("ConnectionAcknowledged", 1, "Open", Dir::Out, None),
    na("ConnectionFailed", 4, "Fail", Dir::Out, Some(2)),
    na("InboundConnectionAccepted", 1, "Open", Dir::In, Some(1)),
    na("InboundConnectionAttempt", 1, "Open", Dir::In, None),
    na("InboundConnectionAcknowledged", 1, "Open", Dir::In, None),
    na(
        "ListeningConnectionCreated",
        7,
        "Listen",
        Dir::Unknown,
        None,
    ),
    na("ConnectionFound", 6, "Traffic", Dir::Unknown, None),
    na("DnsConnectionInspected", 6, "Traffic", Dir::Unknown, None),
    na("FtpConnectionInspected", 6, "Traffic", Dir::Unknown, None),
    na("HttpConnectionInspected", 6, "Traffic", Dir::Unknown, None),
    na("IcmpConnectionInspected", 6, "Traffic", Dir::Unknown, None),
    na("SmtpConnectionInspected", 6, "Traffic", Dir::Unknown, None),
    na("SshConnectionInspected", 6, "Traffic", Dir::Unknown, None),
    na("SslConnectionInspected", 6, "Traffic", Dir::Unknown, None),
    na(
        "NetworkSignatureInspected",
        6,
        "Traffic",
        Dir::Unknown,
        None,
    ),
    na("InboundInternetScanInspected", 6, "Traffic", Dir::In, None),
];

/// The meaning of an ActionType: from [`NETWORK_ACTIONS`], else by its shape (`Inbound…` is
/// inbound, `…Inspected` is Traffic), else activity 99 Other captioned with the ActionType.
fn net_action(act: Option<&str>) -> (u32, String, Dir, Option<u32>) {
    let Some(a) = act else {
        return (0, "Unknown".into(), Dir::Unknown, None);
    };
    if let Some(n) = NETWORK_ACTIONS.iter().find(|n| n.action == a) {
        return (n.activity_id, n.activity.into(), n.dir, n.status);
    }
    let dir = if a.starts_with("Inbound") {
        Dir::In
    } else {
        Dir::Unknown
    };
    if a.ends_with("Inspected") {
        (6, "Traffic".into(), dir, None)
    } else {
        (99, a.into(), dir, None)
    }
}

/// `connection_info.direction_id`: `AdditionalFields.direction` (`In`/`Out`) when the row has
/// it, else the ActionType's.
fn direction(ev: &Event, dir: Dir) -> Dir {
    match ev.additional("direction").and_then(Value::as_str) {
        Some(d) if d.eq_ignore_ascii_case("in") => Dir::In,
        Some(d) if d.eq_ignore_ascii_case("out") => Dir::Out,
        _ => dir,
    }
}

/// When the device's side of a connection has no address (no or a placeholder `LocalIP`), it
/// is still the device: its name and id identify that endpoint.
fn local_is_device(ev: &mut Event, side: &str) {
    const ID: &[&str] = &["ip", "hostname", "uid"];
    if ev.has_any(side, ID) {
        return;
    }
    for (from, attr) in [("device.hostname", "hostname"), ("device.uid", "uid")] {
        if let Some(v) = ev.get(from).cloned() {
            ev.set_owned(&format!("{side}.{attr}"), v);
        }
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
    let (id, name, dir, status) = net_action(act.as_deref());
    initiating_actor(&mut ev);
    let dir = direction(&ev, dir);
    if ev.additional("direction").is_some() {
        ev.take_additional("direction", "connection_info.direction_id");
    }
    let (dir_id, dir_name) = dir.ocsf();
    ev.set("connection_info.direction_id", dir_id.into());
    ev.set("connection_info.direction", dir_name.into());
    if let Some(p) = ev.col_str("Protocol").map(str::to_string) {
        ev.take_col("Protocol", "connection_info.protocol_name");
        if let Some(n) = protocol_num(&p) {
            ev.set("connection_info.protocol_num", n.into());
        }
        ev.set(
            "connection_info.protocol_name",
            p.to_ascii_lowercase().into(),
        );
    }
    // A listening socket has no peer: MDE writes 0.0.0.0/0 there, which stays in `unmapped`.
    if act.as_deref() == Some("ListeningConnectionCreated") {
        ev.apply(&[
            f("LocalIP", "src_endpoint.ip", Conv::Ip),
            f("LocalPort", "src_endpoint.port", Conv::Port),
        ]);
    } else {
        ev.apply(if dir == Dir::In { INBOUND } else { OUTBOUND });
    }
    local_is_device(
        &mut ev,
        if dir == Dir::In {
            "dst_endpoint"
        } else {
            "src_endpoint"
        },
    );
    ev.apply(URL);
    device(&mut ev);
    ev.classify(NETWORK_ACTIVITY, id, &name, 1);
    if let Some(s) = status {
        ev.status(s);
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
fn answers(v: &Value<'_>) -> Option<(Vec<JsonValue>, bool)> {
    let list = match v {
        Value::String(s) => serde_json::from_str::<JsonValue>(s).ok()?,
        other => other.to_json(),
    };
    let mut out = Vec::new();
    let mut complete = true;
    for item in list.as_array()? {
        match item {
            JsonValue::String(s) => out.push(serde_json::json!({ "rdata": s })),
            JsonValue::Object(o) => {
                let rdata = o.get("DnsQueryResultRecord").and_then(JsonValue::as_str)?;
                let mut answer = serde_json::json!({ "rdata": rdata });
                let code = o.get("DnsQueryType").and_then(JsonValue::as_u64);
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
    ev.take_additional("DnsQueryString", "query.hostname");
    ev.set("query.hostname", hostname.into());
    if let Some((list, complete)) = ev.additional("DnsQueryResult").and_then(answers) {
        if complete {
            ev.take_additional("DnsQueryResult", "answers");
        }
        ev.set("answers", JsonValue::Array(list).into());
    }
    initiating_actor(&mut ev);
    ev.apply(&[
        f("RemoteIP", "dst_endpoint.ip", Conv::Ip),
        f("RemotePort", "dst_endpoint.port", Conv::Port),
        f("LocalIP", "src_endpoint.ip", Conv::Ip),
        f("LocalPort", "src_endpoint.port", Conv::Port),
    ]);
    // The device asked: it is the source even when the row has no local address.
    local_is_device(&mut ev, "src_endpoint");
    device(&mut ev);
    ev.classify(DNS_ACTIVITY, 2, "Response", 1);
    Some(ev)
}
