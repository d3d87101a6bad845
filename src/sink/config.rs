//! The sink factory: which sink ([`SinkTarget`], each sink's own config struct lives next to
//! its implementation), batch limits and the retry budget, read by their `RELAY_*` names
//! through [`crate::config::Settings`] (see [`crate::config::SETTINGS`] for the list and
//! defaults), and [`SinkConfig::build`].
//!
//! The Functions handler reads them from the environment ([`SinkConfig::from_env`]); the CLI's
//! `process` command takes the same settings as flags (`cli::SinkArgs`, each flag falling back
//! to its environment variable) and feeds them through the same parser, so both report a bad
//! value the same way: an error naming the setting, at start-up, before any data moves.

use super::elasticsearch::{EsConfig, EsSink};
use super::file::FileSink;
use super::logs_ingestion::{LogsConfig, LogsSink};
use super::queue::{QueueConfig, QueueSink};
use super::retry::RetryPolicy;
use super::stdout::StdoutSink;
use super::webhook::{WebhookConfig, WebhookSink};
use super::Sink;
use crate::config::{ConfigError, Settings};
use std::path::PathBuf;
use std::sync::Arc;

/// Which sink, with its own options.
#[derive(Debug, Clone)]
pub enum SinkTarget {
    /// NDJSON on standard output.
    Stdout,
    /// NDJSON appended to a file, fsynced before each acknowledgement.
    File {
        /// `RELAY_FILE_PATH`.
        path: PathBuf,
    },
    /// HTTP POST to a webhook.
    Webhook(WebhookConfig),
    /// Azure Storage queue messages.
    Queue(QueueConfig),
    /// Azure Monitor Logs Ingestion API (Sentinel / Log Analytics).
    LogsIngestion(LogsConfig),
    /// Elasticsearch / OpenSearch `_bulk`.
    Elasticsearch(EsConfig),
}

/// Everything needed to build the configured sink, and the batch limits its caller cuts
/// batches by.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The sink and its options.
    pub target: SinkTarget,
    /// `RELAY_BATCH_MAX_EVENTS`: events per batch (and per request).
    pub batch_max_events: usize,
    /// `RELAY_BATCH_MAX_BYTES`: bytes per request as sent. Callers can cut batches at this many
    /// NDJSON bytes; the network sinks split further so the cap holds after formatting and
    /// compression.
    pub batch_max_bytes: usize,
}

impl SinkConfig {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::env())
    }

    /// Reads the settings through `s`.
    pub fn from_settings(s: &Settings<'_>) -> Result<Self, ConfigError> {
        let batch_max_events = s.count("RELAY_BATCH_MAX_EVENTS", 1)?;
        let batch_max_bytes = s.size("RELAY_BATCH_MAX_BYTES", 1024)?;
        let retry = RetryPolicy {
            max_elapsed: s.duration("RELAY_RETRY_MAX_ELAPSED")?,
            ..RetryPolicy::default()
        };
        let kind = s.required("RELAY_SINK", "the relay")?;
        let target = match kind.trim().to_ascii_lowercase().as_str() {
            "stdout" => SinkTarget::Stdout,
            "file" => SinkTarget::File {
                path: super::file::path_setting(s)?,
            },
            "webhook" => SinkTarget::Webhook(WebhookConfig::from_settings(
                s,
                batch_max_events,
                batch_max_bytes,
                retry,
            )?),
            "queue" => SinkTarget::Queue(QueueConfig::from_settings(s, retry)?),
            "logs-ingestion" => SinkTarget::LogsIngestion(LogsConfig::from_settings(
                s,
                batch_max_events,
                batch_max_bytes,
                retry,
            )?),
            "elasticsearch" | "opensearch" => SinkTarget::Elasticsearch(
                EsConfig::from_settings(s, batch_max_events, batch_max_bytes, retry)?,
            ),
            other => {
                return Err(ConfigError::new(
                    "RELAY_SINK",
                    format!("must be one of stdout, file, webhook, queue, logs-ingestion, elasticsearch, not `{other}`"),
                ))
            }
        };
        Ok(SinkConfig {
            target,
            batch_max_events,
            batch_max_bytes,
        })
    }

    /// The sink's short name.
    pub fn kind(&self) -> &'static str {
        match self.target {
            SinkTarget::Stdout => "stdout",
            SinkTarget::File { .. } => "file",
            SinkTarget::Webhook(_) => "webhook",
            SinkTarget::Queue(_) => "queue",
            SinkTarget::LogsIngestion(_) => "logs-ingestion",
            SinkTarget::Elasticsearch(_) => "elasticsearch",
        }
    }

    /// Builds the sink. Needs a Tokio runtime only when sending, not here.
    pub fn build(&self) -> Result<Arc<dyn Sink>, ConfigError> {
        Ok(match &self.target {
            SinkTarget::Stdout => Arc::new(StdoutSink),
            // Opening is the start-up check that the path is writable.
            SinkTarget::File { path } => Arc::new(FileSink::open_setting(path)?),
            SinkTarget::Webhook(c) => Arc::new(WebhookSink::new(c.clone())?),
            SinkTarget::Queue(c) => Arc::new(QueueSink::new(c.clone())?),
            SinkTarget::LogsIngestion(c) => Arc::new(LogsSink::new(c.clone())?),
            SinkTarget::Elasticsearch(c) => Arc::new(EsSink::new(c.clone())?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn settings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<SinkConfig, ConfigError> {
        let m = settings(pairs);
        SinkConfig::from_settings(&Settings::new(move |k| m.get(k).cloned()))
    }

    #[test]
    fn defaults_give_stdout() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.kind(), "stdout");
        assert_eq!(c.batch_max_events, 500);
        assert_eq!(c.batch_max_bytes, 1_000_000);
    }

    #[test]
    fn errors_name_the_setting() {
        let e = parse(&[("RELAY_SINK", "kafka")]).unwrap_err();
        assert_eq!(e.setting, "RELAY_SINK");
        assert!(
            e.to_string().starts_with("RELAY_SINK must be one of"),
            "{e}"
        );

        let e = parse(&[("RELAY_SINK", "file")]).unwrap_err();
        assert_eq!(e.setting, "RELAY_FILE_PATH");

        let e = parse(&[("RELAY_BATCH_MAX_EVENTS", "0")]).unwrap_err();
        assert_eq!(e.setting, "RELAY_BATCH_MAX_EVENTS");

        let e = parse(&[("RELAY_BATCH_MAX_BYTES", "lots")]).unwrap_err();
        assert_eq!(e.setting, "RELAY_BATCH_MAX_BYTES");

        let e = parse(&[("RELAY_RETRY_MAX_ELAPSED", "0s")]).unwrap_err();
        assert_eq!(e.setting, "RELAY_RETRY_MAX_ELAPSED");

        let e = parse(&[("RELAY_SINK", "webhook")]).unwrap_err();
        assert_eq!(e.setting, "RELAY_WEBHOOK_URL");
        assert!(e.to_string().contains("is not set"), "{e}");

        let e = parse(&[
            ("RELAY_SINK", "webhook"),
            ("RELAY_WEBHOOK_URL", "http://example.com/in?token=hunter2"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "RELAY_WEBHOOK_URL must be https (http is allowed only for loopback)"
        );
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn sizes_and_retry_budget() {
        let c = parse(&[
            ("RELAY_BATCH_MAX_BYTES", "512KiB"),
            ("RELAY_RETRY_MAX_ELAPSED", "90s"),
            ("RELAY_SINK", "webhook"),
            ("RELAY_WEBHOOK_URL", "http://127.0.0.1:9/x"),
        ])
        .unwrap();
        assert_eq!(c.batch_max_bytes, 512 * 1024);
        let SinkTarget::Webhook(w) = &c.target else {
            panic!("webhook")
        };
        assert_eq!(w.retry.max_elapsed, Duration::from_secs(90));
        assert_eq!(w.max_bytes, 512 * 1024);
    }
}
