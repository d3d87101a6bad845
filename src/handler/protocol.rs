//! The Functions custom-handler invocation protocol (platform facts §3).
//!
//! The host posts `{"Data": {<binding>: value}, "Metadata": {…}}` to `/<FunctionName>`. String
//! values arrive JSON-encoded a second time (a queue message `abc` arrives as `"\"abc\""`,
//! `DequeueCount` as `"1"`); objects arrive as objects. The answer is `200` with
//! `{"Outputs":{},"Logs":[],"ReturnValue":null}`; any other status fails the invocation, and the
//! trigger retries it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Header carrying the invocation id.
pub const INVOCATION_ID: &str = "x-azure-functions-invocationid";

/// One invocation as the host sends it.
#[derive(Debug, Default, Deserialize)]
pub struct Invocation {
    /// Trigger and input binding values, by binding name.
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    /// Trigger metadata (`DequeueCount`, `Id`, `sys`, …).
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
}

/// Undoes the host's extra JSON encoding of strings: a string that parses as JSON is replaced
/// by what it parses to, twice at most (`"\"abc\""` → `"abc"`, `"{\"a\":1}"` → `{"a":1}`).
/// Anything else is returned as is.
pub fn unwrap_value(v: &Value) -> Value {
    let mut cur = v.clone();
    for _ in 0..2 {
        match &cur {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(inner) => cur = inner,
                Err(_) => break,
            },
            _ => break,
        }
    }
    cur
}

impl Invocation {
    /// A metadata value with the double encoding undone.
    pub fn meta(&self, name: &str) -> Option<Value> {
        self.metadata.get(name).map(unwrap_value)
    }
}

/// Marks an answer whose failure the invocation handler already reported (stdout and stderr),
/// so the router's catch-all does not report it again.
#[derive(Debug, Clone, Copy)]
pub struct Reported;

/// The answer to the host: 200 and the empty result for success, 500 (the invocation fails and
/// the trigger retries) with the message in `Logs` otherwise. Always a JSON object with
/// `Content-Type: application/json`: the host fails a 2xx answer with another content type and
/// never completes one with an empty body.
pub fn answer(result: Result<(), String>) -> Response {
    let failed = result.is_err();
    let (status, logs) = match result {
        Ok(()) => (StatusCode::OK, Vec::new()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, vec![e]),
    };
    let body = json!({"Outputs": {}, "Logs": logs, "ReturnValue": null});
    let mut resp = (status, axum::Json(body)).into_response();
    if failed {
        resp.extensions_mut().insert(Reported);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_encoded_values() {
        assert_eq!(unwrap_value(&json!("\"abc\"")), json!("abc"));
        assert_eq!(unwrap_value(&json!("1")), json!(1));
        assert_eq!(unwrap_value(&json!("{\"a\":1}")), json!({"a": 1}));
        assert_eq!(unwrap_value(&json!("\"{\\\"a\\\":1}\"")), json!({"a": 1}));
        assert_eq!(unwrap_value(&json!("plain text")), json!("plain text"));
        assert_eq!(unwrap_value(&json!({"a": 1})), json!({"a": 1}));
        let inv: Invocation = serde_json::from_str(
            r#"{"Data":{"message":"\"x\""},"Metadata":{"DequeueCount":"2","sys":{"MethodName":"BlobCreated"}}}"#,
        )
        .unwrap();
        assert_eq!(inv.meta("DequeueCount"), Some(json!(2)));
        assert_eq!(unwrap_value(&inv.data["message"]), json!("x"));
    }
}
