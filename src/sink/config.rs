//! Sink settings: which sink, its options, batch limits and the retry budget, read by their
//! `RELAY_*` names (see [`crate::config::SETTINGS`] for the list and defaults).
//!
//! The Functions handler reads them from the environment ([`SinkConfig::from_env`]); the CLI's
//! `process` command takes the same settings as flags ([`SinkArgs`], each flag falling back to
//! its environment variable) and feeds them through the same parser, so both report a bad
//! value the same way: an error naming the setting, at start-up, before any data moves.

use super::elasticsearch::{EsConfig, EsSink};
use super::file::FileSink;
use super::logs_ingestion::{LogsConfig, LogsSink};
use super::queue::{QueueConfig, QueueSink};
use super::retry::RetryPolicy;
use super::stdout::StdoutSink;
use super::webhook::{WebhookConfig, WebhookSink};
use super::Sink;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A setting with a bad or missing value. Displays as `<SETTING> <what is wrong>`; the message
/// never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} {message}")]
pub struct ConfigError {
    /// The setting's name (`RELAY_WEBHOOK_URL`, or a connection setting such as
    /// `AzureWebJobsStorage`).
    pub setting: String,
    /// What is wrong, starting with a verb (`must be https …`, `is not set …`).
    pub message: String,
}

impl ConfigError {
    /// An error about `setting`.
    pub fn new(setting: &str, message: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.to_string(),
            message: message.into(),
        }
    }
}

/// Looks settings up by name, falling back to the defaults of [`crate::config::SETTINGS`].
/// Blank values count as unset.
pub struct Settings<'a> {
    get: Lookup<'a>,
}

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

impl<'a> Settings<'a> {
    /// Settings from the process environment.
    pub fn env() -> Settings<'static> {
        Settings::new(crate::config::env)
    }

    /// Settings from any lookup (a map in tests, parsed flags in the CLI).
    pub fn new(get: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Settings { get: Box::new(get) }
    }

    /// The raw value (without default); blank is `None`.
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value, or the setting's default.
    pub fn value(&self, name: &str) -> Option<String> {
        self.raw(name)
            .or_else(|| crate::config::setting(name).and_then(|s| s.default.map(str::to_string)))
    }

    /// The value, or an error saying it is needed by `why`.
    pub fn required(&self, name: &str, why: &str) -> Result<String, ConfigError> {
        self.value(name)
            .ok_or_else(|| ConfigError::new(name, format!("is not set (needed by {why})")))
    }

    /// A boolean: true/false, 1/0, yes/no, on/off.
    pub fn bool(&self, name: &str) -> Result<bool, ConfigError> {
        match self.value(name) {
            None => Ok(false),
            Some(v) => parse_bool(&v).ok_or_else(|| {
                ConfigError::new(name, format!("must be true or false, not `{}`", v.trim()))
            }),
        }
    }

    /// A whole number of at least `min`.
    pub fn count(&self, name: &str, min: usize) -> Result<usize, ConfigError> {
        let v = self.required(name, "the sink")?;
        match v.trim().parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(ConfigError::new(
                name,
                format!(
                    "must be a whole number of at least {min}, not `{}`",
                    v.trim()
                ),
            )),
        }
    }

    /// A size in bytes (`1000000`, `64KiB`, `1MB`) of at least `min`.
    pub fn size(&self, name: &str, min: usize) -> Result<usize, ConfigError> {
        let v = self.required(name, "the sink")?;
        match crate::config::parse_size(&v)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
        {
            Some(n) if n >= min => Ok(n),
            _ => Err(ConfigError::new(
                name,
                format!(
                    "must be a size of at least {min} bytes (e.g. 1000000, 512KiB, 1MB), not `{}`",
                    v.trim()
                ),
            )),
        }
    }

    /// A positive duration (`30s`, `5m`, `1500ms`, `00:05:00`, or plain seconds).
    pub fn duration(&self, name: &str) -> Result<Duration, ConfigError> {
        let v = self.required(name, "the sink")?;
        parse_duration(&v).filter(|d| !d.is_zero()).ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "must be a positive duration (e.g. 30s, 5m, 1500ms, 00:05:00), not `{}`",
                    v.trim()
                ),
            )
        })
    }
}

/// Parses `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses durations: `500ms`, `30s`, `5m`, `2h`, `1.5s`, plain seconds (`30`), or the
/// `hh:mm:ss` form Functions settings use (`00:05:00`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() != 3 {
            return None;
        }
        let h: u64 = parts[0].parse().ok()?;
        let m: u64 = parts[1].parse().ok()?;
        let sec: f64 = parts[2].parse().ok()?;
        if m >= 60 || !(0.0..60.0).contains(&sec) {
            return None;
        }
        return Some(Duration::from_secs(h * 3600 + m * 60) + Duration::from_secs_f64(sec));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => n / 1000.0,
        "" | "s" | "sec" | "secs" => n,
        "m" | "min" | "mins" => n * 60.0,
        "h" | "hr" | "hours" => n * 3600.0,
        _ => return None,
    };
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

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
                path: PathBuf::from(s.required("RELAY_FILE_PATH", "RELAY_SINK=file")?),
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
            SinkTarget::File { path } => {
                Arc::new(FileSink::open(path, true, false).map_err(|e| {
                    ConfigError::new(
                        "RELAY_FILE_PATH",
                        format!("cannot be opened for appending ({}): {e}", path.display()),
                    )
                })?)
            }
            SinkTarget::Webhook(c) => Arc::new(WebhookSink::new(c.clone())?),
            SinkTarget::Queue(c) => Arc::new(QueueSink::new(c.clone())?),
            SinkTarget::LogsIngestion(c) => Arc::new(LogsSink::new(c.clone())?),
            SinkTarget::Elasticsearch(c) => Arc::new(EsSink::new(c.clone())?),
        })
    }
}

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
    /// webhook sink: requests in flight [default: 4].
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
    #[arg(long, env = "RELAY_LOGS_ENDPOINT")]
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
    #[arg(long, env = "RELAY_ES_URL")]
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
    use std::collections::HashMap;

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
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("00:05:00"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 fortnights"), None);
        assert_eq!(parse_duration("00:61:00"), None);
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
