//! The Azure Monitor Logs Ingestion sink (Microsoft Sentinel / Log Analytics custom tables,
//! through a data collection rule).
//!
//! `POST {endpoint}/dataCollectionRules/{rule}/streams/{stream}?api-version=2023-01-01`, body a
//! JSON array of events, each with `TimeGenerated` in front (the event time, else the export
//! time), at most 1,000,000 bytes before compression (the API's limit) and gzip-compressed by
//! default. A stream name holding `{table}` (`Custom-{table}`) gets one request per table.
//!
//! Authentication: a bearer token for `https://monitor.azure.com//.default` from the managed
//! identity (`azure_identity`; on Functions, App Service's `IDENTITY_ENDPOINT` /
//! `IDENTITY_HEADER`), with `RELAY_LOGS_CLIENT_ID` naming a user-assigned identity. The
//! credential caches the token and fetches a new one in the last five minutes before it
//! expires, so a run fetches it once per hour or so, not per request.
//!
//! The API has no per-event results: 429/5xx are retried with `Retry-After`, a 413 splits the
//! request (the shared core, [`super::http`]), and 400/401/403/404 stop the drain with the
//! rule, the stream, the status and the service's error code.

use super::http::{append_with_time, parse_url, target_of, Destination, HttpOptions, HttpSink};
use super::retry::{Attempt, RetryPolicy};
use crate::config::{ConfigError, Settings};
use crate::event::Batch;
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Scope of the token the Logs Ingestion API takes.
pub const SCOPE: &str = "https://monitor.azure.com//.default";
/// API version of the upload call.
pub const API_VERSION: &str = "2023-01-01";
/// Largest request body the API takes, before compression.
pub const MAX_BODY_BYTES: usize = 1_000_000;

/// Settings of the Logs Ingestion sink.
#[derive(Clone)]
pub struct LogsConfig {
    /// Data collection endpoint, or the rule's own logs ingestion endpoint.
    pub endpoint: Url,
    /// The rule's immutable id (`dcr-…`).
    pub rule_id: String,
    /// Stream name; `{table}` is replaced by the event's table.
    pub stream: String,
    /// Client id of a user-assigned managed identity (system-assigned when `None`).
    pub client_id: Option<String>,
    /// Transport: timeout, concurrency, caps, gzip, retries.
    pub http: HttpOptions,
}

impl fmt::Debug for LogsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogsConfig")
            .field("endpoint", &target_of(&self.endpoint))
            .field("rule_id", &self.rule_id)
            .field("stream", &self.stream)
            .field("client_id", &self.client_id)
            .field("http", &self.http)
            .finish()
    }
}

impl LogsConfig {
    /// A configuration with defaults for everything but the endpoint, rule and stream.
    pub fn new(endpoint: Url, rule_id: &str, stream: &str) -> Self {
        LogsConfig {
            endpoint,
            rule_id: rule_id.to_string(),
            stream: stream.to_string(),
            client_id: None,
            http: HttpOptions {
                gzip: true,
                max_raw_bytes: MAX_BODY_BYTES,
                ..HttpOptions::default()
            },
        }
    }

    /// Reads the `RELAY_LOGS_*` settings.
    pub fn from_settings(
        s: &Settings<'_>,
        max_events: usize,
        max_bytes: usize,
        retry: RetryPolicy,
    ) -> Result<Self, ConfigError> {
        const WHY: &str = "RELAY_SINK=logs-ingestion";
        let endpoint = parse_url(&s.required("RELAY_LOGS_ENDPOINT", WHY)?)
            .map_err(|m| ConfigError::new("RELAY_LOGS_ENDPOINT", m))?;
        if endpoint.query().is_some() || endpoint.path() != "/" {
            return Err(ConfigError::new(
                "RELAY_LOGS_ENDPOINT",
                "must be the endpoint's base URL (https://<name>.<region>.ingest.monitor.azure.com), without a path or query",
            ));
        }
        let rule_id = s.required("RELAY_LOGS_RULE_ID", WHY)?.trim().to_string();
        if !rule_id.starts_with("dcr-")
            || !rule_id[4..].bytes().all(|c| c.is_ascii_alphanumeric())
            || rule_id.len() < 5
        {
            return Err(ConfigError::new(
                "RELAY_LOGS_RULE_ID",
                format!("must be the rule's immutable id (`dcr-` and hex digits), not `{rule_id}`"),
            ));
        }
        let stream = s.required("RELAY_LOGS_STREAM", WHY)?.trim().to_string();
        let fixed = stream.replace("{table}", "");
        if !fixed
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(ConfigError::new(
                "RELAY_LOGS_STREAM",
                format!("must be a stream name such as Custom-MdeRelayEvents or Custom-{{table}}, not `{stream}`"),
            ));
        }
        Ok(LogsConfig {
            endpoint,
            rule_id,
            stream,
            client_id: s.raw("RELAY_LOGS_CLIENT_ID").map(|v| v.trim().to_string()),
            http: HttpOptions {
                timeout: Duration::from_secs(30),
                concurrency: 4,
                max_bytes,
                max_events,
                gzip: s.bool("RELAY_LOGS_GZIP")?,
                retry,
                max_raw_bytes: MAX_BODY_BYTES,
            },
        })
    }
}

/// What is particular to Logs Ingestion: the JSON array body, the URL per stream, the token.
pub struct LogsIngestion {
    endpoint: Url,
    target: String,
    rule_id: String,
    stream: String,
    per_table: bool,
    credential: Arc<dyn TokenCredential>,
}

impl fmt::Debug for LogsIngestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogsIngestion")
            .field("target", &self.target)
            .field("rule_id", &self.rule_id)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// Uploads batches through the Logs Ingestion API.
pub type LogsSink = HttpSink<LogsIngestion>;

impl HttpSink<LogsIngestion> {
    /// Builds the sink with the credential `RELAY_CREDENTIAL` names (by default the managed
    /// identity: `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, or the VM's instance metadata
    /// service). No token is fetched here.
    pub fn new(c: LogsConfig) -> Result<Self, ConfigError> {
        let setting = if c.client_id.is_some() {
            "RELAY_LOGS_CLIENT_ID"
        } else {
            "RELAY_SINK"
        };
        let credential = crate::azure::token_credential(
            &|k| crate::config::env(k),
            c.client_id.clone(),
            setting,
        )
        .map_err(|e| {
            ConfigError::new(&e.setting, format!("(logs-ingestion sink): {}", e.message))
        })?;
        Self::with_credential(c, credential)
    }

    /// Builds the sink with any token credential.
    pub fn with_credential(
        c: LogsConfig,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, ConfigError> {
        let dest = LogsIngestion {
            target: target_of(&c.endpoint),
            endpoint: c.endpoint,
            per_table: c.stream.contains("{table}"),
            rule_id: c.rule_id,
            stream: c.stream,
            credential,
        };
        HttpSink::with(dest, c.http, "RELAY_LOGS_ENDPOINT")
    }
}

impl LogsIngestion {
    fn stream_of(&self, batch: &Batch, i: usize) -> String {
        if self.per_table {
            self.stream
                .replace("{table}", batch.items()[i].table.as_ref())
        } else {
            self.stream.clone()
        }
    }
}

/// `{"error":{"code":…,"message":…}}`, the Azure error shape.
#[derive(serde::Deserialize)]
struct AzureError {
    error: AzureErrorBody,
}

#[derive(serde::Deserialize)]
struct AzureErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[async_trait]
impl Destination for LogsIngestion {
    fn name(&self) -> &'static str {
        "logs-ingestion"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn url_setting(&self) -> &'static str {
        "RELAY_LOGS_ENDPOINT"
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn same_request(&self, batch: &Batch, first: usize, i: usize) -> bool {
        !self.per_table || batch.items()[first].table == batch.items()[i].table
    }

    fn open(&self, out: &mut Vec<u8>) {
        out.push(b'[');
    }

    fn close(&self, out: &mut Vec<u8>) {
        out.push(b']');
    }

    fn close_len(&self) -> usize {
        1
    }

    fn append(&self, batch: &Batch, i: usize, first: bool, out: &mut Vec<u8>) {
        if !first {
            out.push(b',');
        }
        append_with_time(batch, i, "TimeGenerated", out);
    }

    async fn prepare(
        &self,
        batch: &Batch,
        events: &[usize],
        _body: &Bytes,
        headers: &mut HeaderMap,
    ) -> Result<Url, Attempt<()>> {
        // The credential answers from its cache until the token is about to expire.
        let token = self
            .credential
            .get_token(&[SCOPE], None)
            .await
            .map_err(|e| Attempt::Retry {
                reason: "token".into(),
                retry_after: None,
                message: format!(
                    "cannot get a token for {SCOPE} from the managed identity: {}",
                    super::http::error_chain(&e)
                ),
            })?;
        let mut v =
            HeaderValue::from_str(&format!("Bearer {}", token.token.secret())).map_err(|_| {
                Attempt::Permanent(
                    "the managed identity returned a token that is not a valid header value".into(),
                )
            })?;
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
        let mut url = self.endpoint.clone();
        url.path_segments_mut()
            .expect("checked to be a base URL")
            .pop_if_empty()
            .extend([
                "dataCollectionRules",
                &self.rule_id,
                "streams",
                &self.stream_of(batch, events[0]),
            ]);
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        Ok(url)
    }

    fn refused(&self, batch: &Batch, events: &[usize], status: StatusCode, body: &[u8]) -> String {
        let (code, message) = match serde_json::from_slice::<AzureError>(body) {
            Ok(e) => (e.error.code, e.error.message),
            Err(_) => (
                "(no error code)".into(),
                String::from_utf8_lossy(
                    &body[..body.len().min(crate::sink::answer::MAX_BODY_EXCERPT)],
                )
                .trim()
                .to_string(),
            ),
        };
        let message: String = message
            .chars()
            .take(crate::sink::answer::MAX_BODY_EXCERPT)
            .collect();
        let hint = match status.as_u16() {
            401 | 403 => "; the app's identity needs the Monitoring Metrics Publisher role on the rule",
            404 => "; check RELAY_LOGS_RULE_ID (the rule's immutable id), RELAY_LOGS_STREAM and RELAY_LOGS_ENDPOINT",
            _ => "",
        };
        format!(
            "Logs Ingestion refused rule {} stream {}: {status} {code}: {message}{hint}",
            self.rule_id,
            self.stream_of(batch, events[0])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<LogsConfig, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogsConfig::from_settings(
            &Settings::new(move |k| m.get(k).cloned()),
            500,
            1_000_000,
            RetryPolicy::default(),
        )
    }

    #[test]
    fn settings() {
        let ok = [
            (
                "RELAY_LOGS_ENDPOINT",
                "https://dce-x.westeurope-1.ingest.monitor.azure.com",
            ),
            ("RELAY_LOGS_RULE_ID", "dcr-00112233445566778899aabbccddeeff"),
            ("RELAY_LOGS_STREAM", "Custom-{table}"),
        ];
        let c = parse(&ok).unwrap();
        assert!(c.http.gzip, "gzip is on by default");
        assert_eq!(c.http.max_raw_bytes, MAX_BODY_BYTES);
        let mut bad = ok;
        bad[1].1 = "/subscriptions/x/dataCollectionRules/y";
        assert_eq!(parse(&bad).unwrap_err().setting, "RELAY_LOGS_RULE_ID");
        let mut bad = ok;
        bad[0].1 = "http://dce.example";
        assert_eq!(parse(&bad).unwrap_err().setting, "RELAY_LOGS_ENDPOINT");
        let mut bad = ok;
        bad[2].1 = "Custom/x";
        assert_eq!(parse(&bad).unwrap_err().setting, "RELAY_LOGS_STREAM");
        assert_eq!(
            parse(&ok[..2]).unwrap().stream,
            "Custom-MdeRelayEvents",
            "the stream Bicep creates is the default"
        );
    }
}
