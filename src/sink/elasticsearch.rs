//! The Elasticsearch / OpenSearch sink: events indexed through the `_bulk` API.
//!
//! Each event is a `create` action with the event id as `_id`, followed by the event with an
//! `@timestamp` field in front:
//!
//! ```text
//! {"create":{"_index":"mde-relay-deviceprocessevents","_id":"<event id>"}}
//! {"@timestamp":"2026-11-24T09:12:41.037115Z","schema":"mde-relay/v1",…}
//! ```
//!
//! `create` with a deterministic id makes every retry and every re-delivery of the export
//! idempotent (a second `create` of the same id fails with `409
//! version_conflict_engine_exception`, which counts as delivered), and works on data streams,
//! which accept only `create`.
//!
//! A JSON column value that is not an object (an array of strings, text) is sent as
//! `{"value": …}` so the `flattened` / `flat_object` fields of the relay's index templates
//! ([`super::es_templates`]) take it (`RELAY_ES_JSON_OBJECTS`).
//!
//! The answer is read item by item: items failing with 429 or 5xx are sent again (only they);
//! items failing with another 4xx (mapping errors) come back as [`crate::event::Rejected`] for the
//! dead-letter destination, with the error type and reason, and the drain goes on. A 413 to the
//! whole request splits it (the shared core, [`super::http`]); 401/403 stop the drain.

use super::http::{
    append_with_time, parse_url, target_of, Destination, HttpOptions, HttpSink, Verdict,
};
use super::retry::{Attempt, RetryPolicy};
use crate::config::{ConfigError, Settings};
use crate::event::Batch;
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;
use url::Url;

/// How the sink authenticates.
#[derive(Clone)]
pub enum EsAuth {
    /// No `Authorization` header (a loopback test server, a proxy that adds it).
    None,
    /// `Authorization: ApiKey <encoded key>` (`RELAY_ES_API_KEY`, the `encoded` value Elasticsearch
    /// returns when the key is created).
    ApiKey(String),
    /// HTTP basic auth (`RELAY_ES_USERNAME` / `RELAY_ES_PASSWORD`).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for EsAuth {
    // Hand-written: the key and the password are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EsAuth::None => "None",
            EsAuth::ApiKey(_) => "ApiKey(..)",
            EsAuth::Basic { .. } => "Basic(..)",
        })
    }
}

/// Settings of the Elasticsearch sink.
#[derive(Clone)]
pub struct EsConfig {
    /// Cluster URL (https, or http on loopback); `_bulk` is appended to its path.
    pub url: Url,
    /// Index or data stream; `{table}` is replaced by the event's table, lower-cased.
    pub index: String,
    /// Authentication.
    pub auth: EsAuth,
    /// Ingest pipeline (`?pipeline=`).
    pub pipeline: Option<String>,
    /// Transport: timeout, concurrency, caps, gzip, retries.
    pub http: HttpOptions,
    /// Send a JSON column value that is not an object (or an array of objects) as
    /// `{"value": …}`, so `flattened` / `flat_object` fields take it (`RELAY_ES_JSON_OBJECTS`).
    pub json_objects: bool,
    /// Install the index templates at start-up (`RELAY_ES_INSTALL_TEMPLATES`).
    pub install_templates: bool,
}

impl fmt::Debug for EsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsConfig")
            .field("target", &target_of(&self.url))
            .field("index", &self.index)
            .field("auth", &self.auth)
            .field("pipeline", &self.pipeline)
            .field("http", &self.http)
            .field("json_objects", &self.json_objects)
            .field("install_templates", &self.install_templates)
            .finish()
    }
}

impl EsConfig {
    /// A configuration with defaults for everything but the URL (tests, benchmarks).
    pub fn new(url: Url) -> Self {
        EsConfig {
            url,
            index: "mde-relay-{table}".into(),
            auth: EsAuth::None,
            pipeline: None,
            http: HttpOptions::default(),
            json_objects: true,
            install_templates: false,
        }
    }

    /// Reads the `RELAY_ES_*` settings.
    pub fn from_settings(
        s: &Settings<'_>,
        max_events: usize,
        max_bytes: usize,
        retry: RetryPolicy,
    ) -> Result<Self, ConfigError> {
        const WHY: &str = "RELAY_SINK=elasticsearch";
        let url = parse_url(&s.required("RELAY_ES_URL", WHY)?)
            .map_err(|m| ConfigError::new("RELAY_ES_URL", m))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::new(
                "RELAY_ES_URL",
                "must be the cluster's base URL, without a query or fragment",
            ));
        }
        let index = s.required("RELAY_ES_INDEX", WHY)?.trim().to_string();
        check_index(&index).map_err(|m| ConfigError::new("RELAY_ES_INDEX", m))?;
        let auth = match (
            s.raw("RELAY_ES_API_KEY"),
            s.raw("RELAY_ES_USERNAME"),
            s.raw("RELAY_ES_PASSWORD"),
        ) {
            (Some(_), Some(_), _) => {
                return Err(ConfigError::new(
                    "RELAY_ES_API_KEY",
                    "and RELAY_ES_USERNAME are both set; use one of them",
                ))
            }
            (Some(k), None, _) => EsAuth::ApiKey(k.trim().to_string()),
            (None, Some(u), Some(p)) => EsAuth::Basic {
                username: u.trim().to_string(),
                password: p,
            },
            (None, Some(_), None) => {
                return Err(ConfigError::new(
                    "RELAY_ES_PASSWORD",
                    "is not set (needed by RELAY_ES_USERNAME)",
                ))
            }
            (None, None, Some(_)) => {
                return Err(ConfigError::new(
                    "RELAY_ES_USERNAME",
                    "is not set (needed by RELAY_ES_PASSWORD)",
                ))
            }
            (None, None, None) => EsAuth::None,
        };
        Ok(EsConfig {
            url,
            index,
            auth,
            pipeline: s.raw("RELAY_ES_PIPELINE").map(|p| p.trim().to_string()),
            http: HttpOptions {
                timeout: Duration::from_secs(30),
                concurrency: 4,
                max_bytes,
                max_events,
                gzip: s.bool("RELAY_ES_GZIP")?,
                retry,
                ..HttpOptions::default()
            },
            json_objects: s.bool("RELAY_ES_JSON_OBJECTS")?,
            install_templates: s.bool("RELAY_ES_INSTALL_TEMPLATES")?,
        })
    }
}

/// Index names are lower case and exclude a few characters (Elasticsearch's rules); checked on
/// the template with `{table}` taken out.
fn check_index(index: &str) -> Result<(), String> {
    let fixed = index.replace("{table}", "");
    if index.is_empty() {
        return Err("must not be empty".into());
    }
    if fixed.chars().any(|c| c.is_uppercase()) {
        return Err(format!("must be lower case, not `{index}`"));
    }
    if let Some(c) = fixed.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
        )
    }) {
        return Err(format!("must not contain `{c}` (`{index}`)"));
    }
    if index.starts_with(['-', '_', '+']) {
        return Err(format!("must not start with `-`, `_` or `+` (`{index}`)"));
    }
    Ok(())
}

/// What is particular to Elasticsearch: the `_bulk` body and its per-item answer.
pub struct Elasticsearch {
    url: Url,
    target: String,
    /// The index template split at `{table}` (one piece when it has none).
    index: Vec<String>,
    /// See [`EsConfig::json_objects`].
    json_objects: bool,
}

impl fmt::Debug for Elasticsearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Elasticsearch")
            .field("target", &self.target)
            .field("index", &self.index.join("{table}"))
            .finish()
    }
}

/// Indexes batches into Elasticsearch or OpenSearch.
pub type EsSink = HttpSink<Elasticsearch>;

impl HttpSink<Elasticsearch> {
    /// Builds the sink (and its HTTP client).
    pub fn new(c: EsConfig) -> Result<Self, ConfigError> {
        let mut url = c.url.clone();
        url.path_segments_mut()
            .map_err(|_| ConfigError::new("RELAY_ES_URL", "cannot be a base URL"))?
            .pop_if_empty()
            .push("_bulk");
        {
            let mut q = url.query_pairs_mut();
            // Only what the sink reads comes back: a smaller answer to parse.
            q.append_pair(
                "filter_path",
                "errors,items.*.status,items.*.error.type,items.*.error.reason",
            );
            if let Some(p) = &c.pipeline {
                q.append_pair("pipeline", p);
            }
        }
        let dest = Elasticsearch {
            target: target_of(&c.url),
            url,
            index: c.index.split("{table}").map(str::to_string).collect(),
            json_objects: c.json_objects,
        };
        let mut sink = HttpSink::with(dest, c.http, "RELAY_ES_URL")?;
        if let Some(v) = auth_header(&c.auth)? {
            sink.base_headers_mut().insert(AUTHORIZATION, v);
        }
        Ok(sink)
    }
}

/// The `Authorization` header of `auth` (marked sensitive), if any.
pub(crate) fn auth_header(auth: &EsAuth) -> Result<Option<HeaderValue>, ConfigError> {
    let a = match auth {
        EsAuth::None => return Ok(None),
        EsAuth::ApiKey(k) => format!("ApiKey {k}"),
        EsAuth::Basic { username, password } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        ),
    };
    let mut v = HeaderValue::from_str(&a).map_err(|_| {
        ConfigError::new(
            "RELAY_ES_API_KEY",
            "(or RELAY_ES_USERNAME/RELAY_ES_PASSWORD) holds characters not allowed in a header",
        )
    })?;
    v.set_sensitive(true);
    Ok(Some(v))
}

/// One item of a `_bulk` answer: `{"create":{"status":201,…}}`.
#[derive(Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<BulkError>,
}

#[derive(Deserialize)]
struct BulkError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Only the error flag, for the common all-good answer (the items are skipped, not kept).
#[derive(Deserialize)]
struct BulkFlag {
    #[serde(default)]
    errors: bool,
}

/// The `error` object of a whole-request failure.
#[derive(Deserialize)]
struct RequestError {
    error: serde_json::Value,
}

#[async_trait]
impl Destination for Elasticsearch {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn url_setting(&self) -> &'static str {
        "RELAY_ES_URL"
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn dead_letters_oversize(&self) -> bool {
        // A document over http.max_content_length can never be indexed; the others can.
        true
    }

    fn append(&self, batch: &Batch, i: usize, _first: bool, out: &mut Vec<u8>) {
        let it = &batch.items()[i];
        out.extend_from_slice(b"{\"create\":{\"_index\":\"");
        for (k, piece) in self.index.iter().enumerate() {
            if k > 0 {
                // Table names are identifiers; anything else is left out rather than escaped
                // into an index name Elasticsearch would refuse anyway.
                out.extend(
                    it.table
                        .as_ref()
                        .bytes()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
                        .map(|c| c.to_ascii_lowercase()),
                );
            }
            json_escape_into(piece, out);
        }
        out.extend_from_slice(b"\",\"_id\":\"");
        out.extend_from_slice(it.id.as_str().as_bytes());
        out.extend_from_slice(b"\"}}\n");
        let start = out.len();
        append_with_time(batch, i, "@timestamp", out);
        if self.json_objects {
            if let Some(doc) =
                super::es_templates::wrap_json_columns(it.table.as_ref(), &out[start..])
            {
                out.truncate(start);
                out.extend_from_slice(&doc);
            }
        }
        out.push(b'\n');
    }

    async fn prepare(
        &self,
        _batch: &Batch,
        _events: &[usize],
        _body: &Bytes,
        _headers: &mut HeaderMap,
    ) -> Result<Url, Attempt<()>> {
        Ok(self.url.clone())
    }

    fn accepted(&self, _batch: &Batch, events: &[usize], body: &[u8]) -> Verdict {
        match serde_json::from_slice::<BulkFlag>(body) {
            Ok(f) if !f.errors => return Verdict::Accepted,
            Ok(_) => {}
            Err(e) => {
                return Verdict::Permanent(format!(
                    "_bulk answered 2xx with a body that is not a bulk response ({e})"
                ))
            }
        }
        let answer: BulkAnswer = match serde_json::from_slice(body) {
            Ok(a) => a,
            Err(e) => {
                return Verdict::Permanent(format!(
                    "_bulk answered 2xx with a body that is not a bulk response ({e})"
                ))
            }
        };
        debug_assert!(answer.errors);
        if answer.items.len() != events.len() {
            return Verdict::Permanent(format!(
                "_bulk answered {} item(s) for {} event(s)",
                answer.items.len(),
                events.len()
            ));
        }
        let mut retry = Vec::new();
        let mut retry_reason = String::new();
        let mut rejected = Vec::new();
        for (k, item) in answer.items.into_iter().enumerate() {
            let Some(r) = item.into_values().next() else {
                return Verdict::Permanent(format!("_bulk answered an empty item at {k}"));
            };
            let what = || match &r.error {
                Some(e) => format!(
                    "{} {}: {}",
                    r.status,
                    e.kind,
                    e.reason.as_deref().unwrap_or("")
                ),
                None => r.status.to_string(),
            };
            match r.status {
                // 409: a document with this id exists, i.e. the event was indexed before.
                200..=299 | 409 => {}
                429 | 500..=599 => {
                    if retry.is_empty() {
                        retry_reason = what();
                    }
                    retry.push(k);
                }
                _ => rejected.push((k, format!("elasticsearch refused the event: {}", what()))),
            }
        }
        Verdict::Items {
            retry,
            retry_reason,
            rejected,
        }
    }

    fn refused(
        &self,
        _batch: &Batch,
        _events: &[usize],
        status: StatusCode,
        body: &[u8],
    ) -> String {
        let kind = serde_json::from_slice::<RequestError>(body)
            .ok()
            .map(|e| match &e.error {
                serde_json::Value::Object(o) => {
                    let t = o.get("type").and_then(|v| v.as_str()).unwrap_or("");
                    let r = o.get("reason").and_then(|v| v.as_str()).unwrap_or("");
                    format!("{t}: {r}")
                }
                other => other.to_string(),
            })
            .unwrap_or_else(|| {
                String::from_utf8_lossy(
                    &body[..body.len().min(crate::sink::answer::MAX_BODY_EXCERPT)],
                )
                .trim()
                .to_string()
            });
        let hint = match status.as_u16() {
            401 => "; check RELAY_ES_API_KEY (or RELAY_ES_USERNAME/RELAY_ES_PASSWORD)",
            403 => "; the key or user lacks the create_doc (or create_index) privilege on RELAY_ES_INDEX",
            _ => "",
        };
        format!("_bulk answered {status} ({kind}){hint}")
    }
}

/// Appends `s` JSON-escaped (without quotes).
fn json_escape_into(s: &str, out: &mut Vec<u8>) {
    let q = serde_json::to_string(s).expect("a string serializes");
    out.extend_from_slice(&q.as_bytes()[1..q.len() - 1]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    fn parse(pairs: &[(&str, &str)]) -> Result<EsConfig, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EsConfig::from_settings(
            &Settings::new(move |k| m.get(k).cloned()),
            500,
            1_000_000,
            RetryPolicy::default(),
        )
    }

    #[test]
    fn settings() {
        let c = parse(&[
            ("RELAY_ES_URL", "https://es.example:9200/"),
            ("RELAY_ES_INDEX", "mde-{table}"),
            ("RELAY_ES_API_KEY", "c2VjcmV0LWtleQ=="),
        ])
        .unwrap();
        assert!(matches!(c.auth, EsAuth::ApiKey(_)));
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
        let e = parse(&[
            ("RELAY_ES_URL", "https://es.example"),
            ("RELAY_ES_INDEX", "MDE"),
        ])
        .unwrap_err();
        assert_eq!(e.setting, "RELAY_ES_INDEX");
        let e = parse(&[
            ("RELAY_ES_URL", "https://es.example"),
            ("RELAY_ES_INDEX", "x"),
            ("RELAY_ES_USERNAME", "elastic"),
        ])
        .unwrap_err();
        assert_eq!(e.setting, "RELAY_ES_PASSWORD");
        let e = parse(&[
            ("RELAY_ES_URL", "http://es.example"),
            ("RELAY_ES_INDEX", "x"),
        ])
        .unwrap_err();
        assert_eq!(e.setting, "RELAY_ES_URL");
    }

    #[test]
    fn bulk_lines() {
        let sink = EsSink::new(EsConfig::new(Url::parse("http://127.0.0.1:9/").unwrap())).unwrap();
        let mut b = Batch::new();
        b.push_json(
            EventId([b'a'; 32]),
            "DeviceProcessEvents".into(),
            Some(1_767_225_600.0),
            br#"{"id":"x"}"#,
        );
        let body = sink.format(&b, &[0]);
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                r#"{{"create":{{"_index":"mde-relay-deviceprocessevents","_id":"{}"}}}}"#,
                "a".repeat(32)
            )
        );
        assert_eq!(
            lines[1],
            r#"{"@timestamp":"2026-01-01T00:00:00.000000Z","id":"x"}"#
        );
        assert!(text.ends_with('\n'));
    }
}
