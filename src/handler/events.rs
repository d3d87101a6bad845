//! BlobCreated notifications in every shape they reach the handler (platform facts §2–§3):
//! Event Grid schema or CloudEvents 1.0; one event or an array; as a JSON object, as JSON text
//! (possibly encoded twice by the host), or as base64 of either (queue messages written by Event
//! Grid are base64 unless the host decoded them already). The eventGridTrigger binding delivers
//! the event object itself, so the same parser serves it. The same queue also carries Tail's
//! drain requests ([`crate::dispatch`]), which name a container and blob instead of a URL.

use base64::Engine;
use serde_json::Value;

/// The event type the relay acts on.
pub const BLOB_CREATED: &str = "Microsoft.Storage.BlobCreated";

/// How deep encodings may nest (string in base64 in string…) before the payload is refused.
const MAX_DEPTH: usize = 6;

/// One storage event, reduced to what the relay uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEvent {
    /// Event id.
    pub id: Option<String>,
    /// `eventType` (Event Grid) or `type` (CloudEvents).
    pub event_type: String,
    /// `subject`: `/blobServices/default/containers/<c>/blobs/<name>`.
    pub subject: Option<String>,
    /// `data.url`: the blob URL.
    pub url: Option<String>,
    /// `data.contentLength`.
    pub content_length: Option<u64>,
    /// `data.blobType`.
    pub blob_type: Option<String>,
    /// A drain request's `data.container` and `data.blob`.
    pub drain: Option<(String, String)>,
}

impl BlobEvent {
    /// True for `Microsoft.Storage.BlobCreated`.
    pub fn is_blob_created(&self) -> bool {
        self.event_type.eq_ignore_ascii_case(BLOB_CREATED)
    }

    /// True for a drain request put by Tail ([`crate::dispatch::DRAIN_REQUEST`]).
    pub fn is_drain_request(&self) -> bool {
        self.event_type
            .eq_ignore_ascii_case(crate::dispatch::DRAIN_REQUEST)
    }
}

/// Extracts every event from a trigger value. Fails when the value holds nothing that looks
/// like an event (the message is then retried and ends in the poison queue, where it can be
/// inspected).
pub fn parse(v: &Value) -> Result<Vec<BlobEvent>, String> {
    let mut out = Vec::new();
    collect(v, 0, &mut out)?;
    if out.is_empty() {
        return Err("payload holds no event".into());
    }
    Ok(out)
}

fn collect(v: &Value, depth: usize, out: &mut Vec<BlobEvent>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("payload is nested too deeply".into());
    }
    match v {
        Value::Array(items) => {
            for i in items {
                collect(i, depth + 1, out)?;
            }
            Ok(())
        }
        Value::Object(_) => {
            out.push(event(v)?);
            Ok(())
        }
        Value::String(s) => collect(&decode_text(s)?, depth + 1, out),
        _ => Err(format!("payload is a JSON {}, not an event", kind(v))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A string holding JSON text or base64 of JSON text.
fn decode_text(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return Ok(v);
    }
    let compact: String = t.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        if let Ok(bytes) = engine.decode(compact.as_bytes()) {
            let text = String::from_utf8(bytes).map_err(|_| "base64 payload is not UTF-8")?;
            return serde_json::from_str::<Value>(text.trim())
                .map_err(|e| format!("base64 payload is not JSON: {e}"));
        }
    }
    let head: String = t.chars().take(40).collect();
    Err(format!(
        "payload is neither JSON nor base64 JSON (starts `{head}`)"
    ))
}

fn str_field(o: &serde_json::Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(str::to_string)
}

fn event(v: &Value) -> Result<BlobEvent, String> {
    let o = v.as_object().expect("caller checked");
    // Event Grid schema: eventType; CloudEvents: type (+ specversion).
    let event_type = str_field(o, "eventType")
        .or_else(|| str_field(o, "type"))
        .ok_or("object has neither `eventType` (Event Grid) nor `type` (CloudEvents)")?;
    let data = match (o.get("data"), o.get("data_base64")) {
        (Some(Value::String(s)), _) => decode_text(s)?,
        (Some(d), _) => d.clone(),
        (None, Some(Value::String(b))) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|_| "data_base64 is not base64")?;
            serde_json::from_slice(&bytes).map_err(|e| format!("data_base64 is not JSON: {e}"))?
        }
        _ => Value::Null,
    };
    let d = data.as_object();
    Ok(BlobEvent {
        id: str_field(o, "id"),
        event_type,
        subject: str_field(o, "subject"),
        url: d.and_then(|d| str_field(d, "url")),
        content_length: d
            .and_then(|d| d.get("contentLength"))
            .and_then(Value::as_u64),
        blob_type: d.and_then(|d| str_field(d, "blobType")),
        drain: d.and_then(|d| Some((str_field(d, "container")?, str_field(d, "blob")?))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eg() -> Value {
        json!({
            "topic": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acme",
            "subject": "/blobServices/default/containers/insights-logs-advancedhunting-deviceevents/blobs/tenantId=t/y=2026/m=11/d=01/h=10/m=00/PT1H.json",
            "eventType": "Microsoft.Storage.BlobCreated",
            "id": "e1",
            "data": {
                "api": "PutBlob", "contentLength": 0, "blobType": "AppendBlob",
                "url": "https://acme.blob.core.windows.net/insights-logs-advancedhunting-deviceevents/tenantId=t/y=2026/m=11/d=01/h=10/m=00/PT1H.json"
            },
            "dataVersion": "", "metadataVersion": "1", "eventTime": "2026-11-01T10:00:01Z"
        })
    }

    fn ce() -> Value {
        json!({
            "specversion": "1.0", "type": "Microsoft.Storage.BlobCreated", "id": "c1",
            "source": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acme",
            "subject": "/blobServices/default/containers/c/blobs/b",
            "time": "2026-11-01T10:00:01Z",
            "data": {"url": "https://acme.blob.core.windows.net/c/b", "contentLength": 5}
        })
    }

    #[test]
    fn every_shape() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let one = eg().to_string();
        let arr = json!([eg(), ce()]).to_string();
        let shapes = [
            (eg(), 1),
            (json!([eg(), ce()]), 2),
            (Value::String(one.clone()), 1),
            (Value::String(serde_json::to_string(&one).unwrap()), 1),
            (Value::String(b64(&one)), 1),
            (Value::String(serde_json::to_string(&b64(&arr)).unwrap()), 2),
            (ce(), 1),
        ];
        for (v, n) in shapes {
            let evs = parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(evs.len(), n, "{v}");
            assert!(evs.iter().all(BlobEvent::is_blob_created));
            assert!(evs[0]
                .url
                .as_deref()
                .unwrap()
                .starts_with("https://acme.blob."));
        }
        let e = &parse(&eg()).unwrap()[0];
        assert_eq!(e.content_length, Some(0));
        assert_eq!(e.blob_type.as_deref(), Some("AppendBlob"));
        assert_eq!(e.id.as_deref(), Some("e1"));
    }

    #[test]
    fn data_as_string_and_data_base64() {
        let mut v = eg();
        v["data"] = Value::String(v["data"].to_string());
        assert!(parse(&v).unwrap()[0].url.is_some());
        let mut c = ce();
        let data = c["data"].to_string();
        c.as_object_mut().unwrap().remove("data");
        c["data_base64"] = Value::String(base64::engine::general_purpose::STANDARD.encode(data));
        assert!(parse(&c).unwrap()[0].url.is_some());
    }

    #[test]
    fn drain_requests_in_every_encoding() {
        let key =
            crate::source::BlobKey::new("c", "tenantId=t/y=2026/m=11/d=01/h=10/m=00/PT1H.json");
        let now = chrono::Utc::now();
        let json = crate::dispatch::request_json(&key, 7, now);
        let b64 = crate::dispatch::request_message(&key, 7, now);
        // As the host hands them over: decoded (messageEncoding base64) and JSON-encoded as a
        // string; or still base64; or the object.
        for v in [
            Value::String(json.clone()),
            Value::String(serde_json::to_string(&json).unwrap()),
            Value::String(b64),
            serde_json::from_str(&json).unwrap(),
        ] {
            let e = &parse(&v).unwrap()[0];
            assert!(e.is_drain_request() && !e.is_blob_created(), "{v}");
            assert_eq!(e.drain, Some(("c".into(), key.blob.clone())));
            assert_eq!(e.url, None);
        }
    }

    #[test]
    fn garbage_is_refused() {
        for v in [
            json!(1),
            json!("hello there"),
            json!({"a": 1}),
            json!([]),
            json!(null),
        ] {
            assert!(parse(&v).is_err(), "{v}");
        }
    }
}
