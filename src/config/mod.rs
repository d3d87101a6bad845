//! Settings: every environment variable the binary reads, in one table.
//!
//! Functions app settings reach the handler as environment variables, and the CLI reads the same
//! names (flags override them). Keeping the list here lets the deployment test check that the
//! Bicep template sets everything the binary needs, and lets start-up name the offending setting
//! when one is wrong. Secret settings are never logged. The settings reader ([`Settings`],
//! [`ConfigError`]) and the value parsers every layer shares ([`parse_size`], [`parse_bool`],
//! [`parse_duration`], [`parse_long_duration`]) live here too ([`settings`]), so lower layers
//! never reach into `cli/` or a sink for them.

pub mod settings;

pub use settings::{parse_bool, parse_duration, parse_long_duration, ConfigError, Settings};

/// One setting the binary reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Environment variable name.
    pub name: &'static str,
    /// Default when unset (`None`: no default).
    pub default: Option<&'static str>,
    /// Must be set for `serve` to start (in Azure; the Bicep template sets it).
    pub required_in_azure: bool,
    /// Holds a secret: never logged, kept out of deployment outputs.
    pub secret: bool,
    /// What it does.
    pub doc: &'static str,
}

const fn s(
    name: &'static str,
    default: Option<&'static str>,
    required_in_azure: bool,
    secret: bool,
    doc: &'static str,
) -> Setting {
    Setting {
        name,
        default,
        required_in_azure,
        secret,
        doc,
    }
}

/// Every setting, grouped by stage.
pub static SETTINGS: &[Setting] = &[
    // Functions host and storage connections.
    s("FUNCTIONS_CUSTOMHANDLER_PORT", None, false, false, "Port the Functions host asks the handler to listen on (127.0.0.1)."),
    s("AzureWebJobsStorage", None, true, true, "The host's storage: checkpoints, dead letters, the event queue (connection string or identity-based prefix settings). Endpoints must be https (http only on 127.0.0.1, [::1] or localhost: Azurite)."),
    s("MdeExportStorage", None, true, true, "The Defender export storage account (connection string, or MdeExportStorage__blobServiceUri for managed identity). Read and listed only (an account key signs a read+list SAS); endpoints must be https (http only on loopback: Azurite)."),
    s("RELAY_CREDENTIAL", Some("managedidentity"), false, false, "Entra ID credential of identity-based connections and the logs-ingestion sink: managedidentity | azurecli (the `az login` identity, for status/redrive from a workstation) | auto (managed identity where the platform sets IDENTITY_ENDPOINT, else the Azure CLI)."),
    // Source and drain.
    s("RELAY_CONTAINER_PREFIX", Some("insights-logs-advancedhunting-"), false, false, "Only containers starting with this are read."),
    s("RELAY_EVENTS_QUEUE", Some("mde-blob-created"), true, false, "Queue Event Grid delivers BlobCreated events into."),
    s("RELAY_TAIL_SCHEDULE", Some("0 */1 * * * *"), false, false, "NCRONTAB schedule of the Tail function."),
    s("RELAY_TAIL_MODE", Some("dispatch"), false, false, "What Tail does with blobs behind their checkpoint: `dispatch` puts one drain request per blob on RELAY_EVENTS_QUEUE, so BlobCreated invocations drain them on every instance the host scales to; `drain` drains them in the Tail invocation (single-process use)."),
    s("RELAY_STATE_CONTAINER", Some("mde-relay-state"), false, false, "Container of checkpoints in AzureWebJobsStorage."),
    s("RELAY_DEADLETTER_CONTAINER", Some("mde-relay-deadletter"), false, false, "Container of dead-lettered rows in AzureWebJobsStorage."),
    s("RELAY_FORMAT", Some("normalized"), false, false, "Event format: normalized | raw | ocsf (OCSF 1.5.0 events, docs/ocsf.md)."),
    s("RELAY_TABLES", None, false, false, "Allow-list of tables (comma-separated); empty = all."),
    s("RELAY_TENANTS", None, false, false, "Allow-list of tenant ids (comma-separated); empty = all."),
    s("RELAY_TRANSFORMS", None, false, false, "KQL transforms per table run on every row before the sink (docs/transforms.md): a file path, or the transform text itself (a value containing `|`). Checked at start-up: a bad transform stops `serve` and `process` before any read. Rows a `where` drops are counted as `filtered`, not dead-lettered."),
    s("RELAY_MAX_ROW_BYTES", Some("16MiB"), false, false, "Longest accepted row; longer rows are dead-lettered."),
    s("RELAY_READ_CHUNK", Some("4MiB"), false, false, "Bytes per ranged read of an export blob (memory per drain is about twice this)."),
    s("RELAY_CLOSE_GRACE", Some("30m"), false, false, "A blob is closed (its final unterminated row processed) once its hour ended and it was last written this long ago."),
    s("RELAY_LEASE_SECONDS", Some("30"), false, false, "Lease on a blob's checkpoint while it is drained (15-60; renewed every third)."),
    s("RELAY_DRAIN_CONCURRENCY", Some("4"), false, false, "Blobs drained at once by one instance."),
    s("RELAY_MAX_DRAIN_TIME", Some("8m"), false, false, "An invocation stops draining (at a checkpoint) after this long, and no wait (drain slot, lease, sink retries) outlasts it; a sink send in flight gets 60 s more, so keep it 1 min+ below functionTimeout."),
    s("RELAY_TAIL_SWEEP_INTERVAL", Some("1h"), false, false, "How often Tail also re-checks the last RELAY_TAIL_SWEEP_HOURS hours."),
    s("RELAY_TAIL_SWEEP_HOURS", Some("48"), false, false, "How many hours back the slow sweep looks."),
    s("RELAY_MAX_REQUEST_BYTES", Some("4MiB"), false, false, "Largest invocation body the handler accepts."),
    s("RUST_LOG", Some("info"), false, false, "Log filter of the handler's JSON logs (tracing EnvFilter syntax)."),
    // Sinks.
    s("RELAY_SINK", Some("stdout"), true, false, "Destination: stdout | file | webhook | queue | logs-ingestion | elasticsearch."),
    s("RELAY_BATCH_MAX_EVENTS", Some("500"), false, false, "Events per batch."),
    s("RELAY_BATCH_MAX_BYTES", Some("1000000"), false, false, "Bytes per request as sent (after serialization and compression)."),
    s("RELAY_INFLIGHT_BATCHES", Some("8"), false, false, "Batches of one blob (or one `process` run) at the sink at once while the next ones are read; acknowledgements are applied in order, so the checkpoint only passes batches the sink acknowledged. File and stdout sinks take one at a time (their output stays in input order)."),
    s("RELAY_CHECKPOINT_INTERVAL", Some("5s"), false, false, "A drain writes its checkpoint at most this often (and at its end, on shutdown and at its deadline). On a crash at most this much (or RELAY_CHECKPOINT_BYTES), plus the batches in flight, is delivered again, with the same ids."),
    s("RELAY_CHECKPOINT_BYTES", Some("16MiB"), false, false, "A drain writes its checkpoint once this much input was acknowledged since the last write, if RELAY_CHECKPOINT_INTERVAL did not come first."),
    s("RELAY_FILE_PATH", None, false, false, "file sink: NDJSON file to append to."),
    s("RELAY_WEBHOOK_URL", None, false, true, "webhook sink: URL (https, or http on loopback)."),
    s("RELAY_WEBHOOK_FORMAT", Some("ndjson"), false, false, "webhook sink: ndjson | json | splunk-hec."),
    s("RELAY_WEBHOOK_HEADERS", None, false, true, "webhook sink: extra headers, `Name: value` separated by newlines or `;`."),
    s("RELAY_WEBHOOK_GZIP", Some("false"), false, false, "webhook sink: gzip request bodies."),
    s("RELAY_WEBHOOK_SECRET", None, false, true, "webhook sink: HMAC-SHA256 key for X-Relay-Signature."),
    s("RELAY_WEBHOOK_TIMEOUT", Some("30s"), false, false, "webhook sink: per-request timeout."),
    s("RELAY_WEBHOOK_CONCURRENCY", Some("8"), false, false, "webhook sink: requests in flight, across all drains of the process (the default lets one blob's RELAY_INFLIGHT_BATCHES batches be at the receiver at once)."),
    s("RELAY_QUEUE_NAME", None, false, false, "queue sink: Storage queue name."),
    s("RELAY_QUEUE_CONNECTION", Some("AzureWebJobsStorage"), false, false, "queue sink: name of the connection setting."),
    s("RELAY_QUEUE_ENCODING", Some("base64"), false, false, "queue sink: base64 | none."),
    s("RELAY_QUEUE_CLAIMS_CONTAINER", Some("mde-relay-claims"), false, false, "queue sink: container (same account) of events too large for one message (claim check)."),
    s("RELAY_QUEUE_CONCURRENCY", Some("8"), false, false, "queue sink: messages in flight."),
    s("RELAY_RETRY_MAX_ELAPSED", Some("5m"), false, false, "Network sinks: give up retrying a request after this long (backoff with full jitter; a Retry-After is honoured up to 60 s per wait)."),
    // Sinks: Azure Monitor Logs Ingestion (Sentinel / Log Analytics) and Elasticsearch / OpenSearch.
    s("RELAY_LOGS_ENDPOINT", None, false, false, "logs-ingestion sink: data collection endpoint, or the rule's own logs ingestion endpoint (https, or http on loopback)."),
    s("RELAY_LOGS_RULE_ID", None, false, false, "logs-ingestion sink: the data collection rule's immutable id (`dcr-…`)."),
    s("RELAY_LOGS_STREAM", Some("Custom-MdeRelayEvents"), false, false, "logs-ingestion sink: stream name; `{table}` is replaced by the event's table (e.g. `Custom-{table}`)."),
    s("RELAY_LOGS_CLIENT_ID", None, false, false, "logs-ingestion sink: client id of a user-assigned managed identity (default: the system-assigned one)."),
    s("RELAY_LOGS_GZIP", Some("true"), false, false, "logs-ingestion sink: gzip request bodies (the 1,000,000-byte limit applies before compression)."),
    s("RELAY_ES_URL", None, false, false, "elasticsearch sink: cluster URL (https, or http on loopback); `_bulk` is appended."),
    s("RELAY_ES_INDEX", Some("mde-relay-{table}"), false, false, "elasticsearch sink: index or data stream; `{table}` is replaced by the event's table, lower-cased."),
    s("RELAY_ES_API_KEY", None, false, true, "elasticsearch sink: API key (the `encoded` value), sent as `Authorization: ApiKey …`."),
    s("RELAY_ES_USERNAME", None, false, false, "elasticsearch sink: user name for basic auth (instead of an API key)."),
    s("RELAY_ES_PASSWORD", None, false, true, "elasticsearch sink: password for basic auth."),
    s("RELAY_ES_PIPELINE", None, false, false, "elasticsearch sink: ingest pipeline documents go through."),
    s("RELAY_ES_GZIP", Some("false"), false, false, "elasticsearch sink: gzip request bodies."),
    s("RELAY_ES_JSON_OBJECTS", Some("true"), false, false, "elasticsearch sink: send a JSON column value that is not an object (an array of strings, text) as `{\"value\": …}`, so the templates' `flattened`/`flat_object` fields take it."),
    s("RELAY_ES_INSTALL_TEMPLATES", Some("false"), false, false, "elasticsearch sink: install the index templates (as `mde-relay setup elasticsearch` does) at start-up."),
];

/// Looks a setting up in the table.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Reads an environment variable; unset and empty are both `None`.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads a setting from the environment, falling back to its default.
pub fn env_or_default(name: &str) -> Option<String> {
    env(name).or_else(|| setting(name).and_then(|s| s.default.map(str::to_string)))
}

/// Parses sizes like `1GiB`, `500MB`, `16m`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 4096, 64KiB, 500MB, 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        u => return Err(format!("unknown size unit `{u}` in `{s}`")),
    };
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1.5k"), Ok(1500));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
