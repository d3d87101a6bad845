//! The sink settings as command-line flags ([`SinkArgs`]): each flag falls back to its
//! `RELAY_*` environment variable and goes through the same parser as the handler's settings
//! ([`crate::sink::SinkConfig::from_settings`]).

use crate::config::{ConfigError, Settings};
use crate::sink::SinkConfig;

/// The sink settings as command-line flags; each falls back to its `RELAY_*` environment
/// variable (flags win), then to the default in [`crate::config::SETTINGS`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SinkArgs {
    /// Destination: stdout | file | webhook | queue | logs-ingestion | elasticsearch [default: stdout].
    #[arg(long, env = "RELAY_SINK")]
    pub sink: Option<String>,
    /// file sink: NDJSON file to append to (fsynced before each acknowledgement).
    #[arg(long, env = "RELAY_FILE_PATH")]
    pub file_path: Option<String>,
    /// Events per batch [default: 500].
    #[arg(long, env = "RELAY_BATCH_MAX_EVENTS")]
    pub batch_max_events: Option<String>,
    /// Bytes per request as sent, after formatting and compression [default: 1000000].
    #[arg(long, env = "RELAY_BATCH_MAX_BYTES")]
    pub batch_max_bytes: Option<String>,
    /// Batches at the sink at once (acknowledged in order) [default: 8].
    #[arg(long, env = "RELAY_INFLIGHT_BATCHES")]
    pub inflight_batches: Option<String>,
    /// webhook sink: URL (https, or http on loopback).
    #[arg(long, env = "RELAY_WEBHOOK_URL", hide_env_values = true)]
    pub webhook_url: Option<String>,
    /// webhook sink: ndjson | json | splunk-hec [default: ndjson].
    #[arg(long, env = "RELAY_WEBHOOK_FORMAT")]
    pub webhook_format: Option<String>,
    /// webhook sink: extra headers, `Name: value` separated by newlines or `;`.
    #[arg(long, env = "RELAY_WEBHOOK_HEADERS", hide_env_values = true)]
    pub webhook_headers: Option<String>,
    /// webhook sink: gzip request bodies (true/false) [default: false].
    #[arg(long, env = "RELAY_WEBHOOK_GZIP")]
    pub webhook_gzip: Option<String>,
    /// webhook sink: HMAC-SHA256 key for the X-Relay-Signature header.
    #[arg(long, env = "RELAY_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// webhook sink: per-request timeout [default: 30s].
    #[arg(long, env = "RELAY_WEBHOOK_TIMEOUT")]
    pub webhook_timeout: Option<String>,
    /// webhook sink: requests in flight [default: 8].
    #[arg(long, env = "RELAY_WEBHOOK_CONCURRENCY")]
    pub webhook_concurrency: Option<String>,
    /// queue sink: Storage queue name.
    #[arg(long, env = "RELAY_QUEUE_NAME")]
    pub queue_name: Option<String>,
    /// queue sink: name of the connection setting [default: AzureWebJobsStorage].
    #[arg(long, env = "RELAY_QUEUE_CONNECTION")]
    pub queue_connection: Option<String>,
    /// queue sink: message encoding, base64 | none [default: base64].
    #[arg(long, env = "RELAY_QUEUE_ENCODING")]
    pub queue_encoding: Option<String>,
    /// queue sink: container for events too large for one message [default: mde-relay-claims].
    #[arg(long, env = "RELAY_QUEUE_CLAIMS_CONTAINER")]
    pub queue_claims_container: Option<String>,
    /// queue sink: messages in flight [default: 8].
    #[arg(long, env = "RELAY_QUEUE_CONCURRENCY")]
    pub queue_concurrency: Option<String>,
    /// Give up retrying a request after this long [default: 5m].
    #[arg(long, env = "RELAY_RETRY_MAX_ELAPSED")]
    pub retry_max_elapsed: Option<String>,
    /// logs-ingestion sink: data collection endpoint, or the rule's logs ingestion endpoint.
    #[arg(long, env = "RELAY_LOGS_ENDPOINT", hide_env_values = true)]
    pub logs_endpoint: Option<String>,
    /// logs-ingestion sink: the data collection rule's immutable id (dcr-…).
    #[arg(long, env = "RELAY_LOGS_RULE_ID")]
    pub logs_rule_id: Option<String>,
    /// logs-ingestion sink: stream name; {table} becomes the event's table [default: Custom-MdeRelayEvents].
    #[arg(long, env = "RELAY_LOGS_STREAM")]
    pub logs_stream: Option<String>,
    /// logs-ingestion sink: client id of a user-assigned managed identity.
    #[arg(long, env = "RELAY_LOGS_CLIENT_ID")]
    pub logs_client_id: Option<String>,
    /// logs-ingestion sink: gzip request bodies (true/false) [default: true].
    #[arg(long, env = "RELAY_LOGS_GZIP")]
    pub logs_gzip: Option<String>,
    /// elasticsearch sink: cluster URL (https, or http on loopback).
    #[arg(long, env = "RELAY_ES_URL", hide_env_values = true)]
    pub es_url: Option<String>,
    /// elasticsearch sink: index or data stream; {table} becomes the table, lower-cased [default: mde-relay-{table}].
    #[arg(long, env = "RELAY_ES_INDEX")]
    pub es_index: Option<String>,
    /// elasticsearch sink: API key (the `encoded` value), sent as `Authorization: ApiKey …`.
    #[arg(long, env = "RELAY_ES_API_KEY", hide_env_values = true)]
    pub es_api_key: Option<String>,
    /// elasticsearch sink: user name for basic auth (with --es-password).
    #[arg(long, env = "RELAY_ES_USERNAME")]
    pub es_username: Option<String>,
    /// elasticsearch sink: password for basic auth.
    #[arg(long, env = "RELAY_ES_PASSWORD", hide_env_values = true)]
    pub es_password: Option<String>,
    /// elasticsearch sink: ingest pipeline to run documents through.
    #[arg(long, env = "RELAY_ES_PIPELINE")]
    pub es_pipeline: Option<String>,
    /// elasticsearch sink: gzip request bodies (true/false) [default: false].
    #[arg(long, env = "RELAY_ES_GZIP")]
    pub es_gzip: Option<String>,
    /// elasticsearch sink: send JSON column values that are not objects as {"value": …}
    /// (true/false) [default: true].
    #[arg(long, env = "RELAY_ES_JSON_OBJECTS")]
    pub es_json_objects: Option<String>,
    /// elasticsearch sink: install the index templates before sending (true/false)
    /// [default: false].
    #[arg(long, env = "RELAY_ES_INSTALL_TEMPLATES")]
    pub es_install_templates: Option<String>,
}

impl SinkArgs {
    /// The value given for setting `name` (flag or its environment variable). Names that are
    /// not sink flags (such as a queue's connection setting) are read from the environment.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let v = match name {
            "RELAY_SINK" => &self.sink,
            "RELAY_FILE_PATH" => &self.file_path,
            "RELAY_BATCH_MAX_EVENTS" => &self.batch_max_events,
            "RELAY_BATCH_MAX_BYTES" => &self.batch_max_bytes,
            "RELAY_INFLIGHT_BATCHES" => &self.inflight_batches,
            "RELAY_WEBHOOK_URL" => &self.webhook_url,
            "RELAY_WEBHOOK_FORMAT" => &self.webhook_format,
            "RELAY_WEBHOOK_HEADERS" => &self.webhook_headers,
            "RELAY_WEBHOOK_GZIP" => &self.webhook_gzip,
            "RELAY_WEBHOOK_SECRET" => &self.webhook_secret,
            "RELAY_WEBHOOK_TIMEOUT" => &self.webhook_timeout,
            "RELAY_WEBHOOK_CONCURRENCY" => &self.webhook_concurrency,
            "RELAY_QUEUE_NAME" => &self.queue_name,
            "RELAY_QUEUE_CONNECTION" => &self.queue_connection,
            "RELAY_QUEUE_ENCODING" => &self.queue_encoding,
            "RELAY_QUEUE_CLAIMS_CONTAINER" => &self.queue_claims_container,
            "RELAY_QUEUE_CONCURRENCY" => &self.queue_concurrency,
            "RELAY_RETRY_MAX_ELAPSED" => &self.retry_max_elapsed,
            "RELAY_LOGS_ENDPOINT" => &self.logs_endpoint,
            "RELAY_LOGS_RULE_ID" => &self.logs_rule_id,
            "RELAY_LOGS_STREAM" => &self.logs_stream,
            "RELAY_LOGS_CLIENT_ID" => &self.logs_client_id,
            "RELAY_LOGS_GZIP" => &self.logs_gzip,
            "RELAY_ES_URL" => &self.es_url,
            "RELAY_ES_INDEX" => &self.es_index,
            "RELAY_ES_API_KEY" => &self.es_api_key,
            "RELAY_ES_USERNAME" => &self.es_username,
            "RELAY_ES_PASSWORD" => &self.es_password,
            "RELAY_ES_PIPELINE" => &self.es_pipeline,
            "RELAY_ES_GZIP" => &self.es_gzip,
            "RELAY_ES_JSON_OBJECTS" => &self.es_json_objects,
            "RELAY_ES_INSTALL_TEMPLATES" => &self.es_install_templates,
            _ => return crate::config::env(name),
        };
        v.clone()
    }

    /// The flag of setting `name`, for error messages (`--webhook-url`).
    pub fn flag(name: &str) -> Option<String> {
        name.strip_prefix("RELAY_")
            .map(|rest| format!("--{}", rest.to_ascii_lowercase().replace('_', "-")))
    }

    /// Parses the flags into a [`SinkConfig`]. Errors name the setting and its flag.
    pub fn config(&self) -> Result<SinkConfig, ConfigError> {
        SinkConfig::from_settings(&Settings::new(|k| self.lookup(k))).map_err(|mut e| {
            if let Some(flag) = Self::flag(&e.setting) {
                e.setting = format!("{} ({flag})", e.setting);
            }
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_settings() {
        assert_eq!(
            SinkArgs::flag("RELAY_WEBHOOK_URL").as_deref(),
            Some("--webhook-url")
        );
        let a = SinkArgs {
            sink: Some("webhook".into()),
            webhook_url: Some("ftp://127.0.0.1/".into()),
            ..Default::default()
        };
        let e = a.config().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("RELAY_WEBHOOK_URL (--webhook-url) must be"),
            "{e}"
        );
        // Every sink setting in the table has a flag, and every flag a setting.
        for s in crate::config::SETTINGS {
            let sink_setting = s.name.starts_with("RELAY_BATCH_")
                || s.name.starts_with("RELAY_WEBHOOK_")
                || s.name.starts_with("RELAY_QUEUE_")
                || s.name.starts_with("RELAY_RETRY_")
                || s.name.starts_with("RELAY_LOGS_")
                || s.name.starts_with("RELAY_ES_")
                || s.name == "RELAY_SINK"
                || s.name == "RELAY_FILE_PATH";
            if sink_setting {
                let marker = "x-marker-value";
                let mut a = SinkArgs::default();
                set_by_flag(&mut a, s.name, marker);
                assert_eq!(a.lookup(s.name).as_deref(), Some(marker), "{}", s.name);
            }
        }
    }

    /// Sets the field of `a` for setting `name` through clap itself, so a setting without a
    /// flag fails the test.
    fn set_by_flag(a: &mut SinkArgs, name: &str, value: &str) {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            args: SinkArgs,
        }
        let flag = SinkArgs::flag(name).unwrap();
        let w = Wrap::try_parse_from(["x", &flag, value])
            .unwrap_or_else(|e| panic!("{name}: flag {flag} missing: {e}"));
        *a = w.args;
    }
}
