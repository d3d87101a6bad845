//! Settings of the queue sink ([`QueueConfig`]), read by their `RELAY_QUEUE_*` names.

use super::QueueEncoding;
use crate::azure::StorageAccount;
use crate::config::{ConfigError, Settings};
use crate::sink::retry::RetryPolicy;
use std::fmt;

/// Settings of the queue sink.
#[derive(Clone)]
pub struct QueueConfig {
    /// The storage account (from the connection `connection` names).
    pub account: StorageAccount,
    /// The queue.
    pub queue: String,
    /// Message encoding.
    pub encoding: QueueEncoding,
    /// Container of claim-check blobs (same account).
    pub claims_container: String,
    /// Messages in flight.
    pub concurrency: usize,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl fmt::Debug for QueueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueConfig")
            .field("account", &self.account) // its Debug hides keys and SAS tokens
            .field("queue", &self.queue)
            .field("encoding", &self.encoding)
            .field("claims_container", &self.claims_container)
            .field("concurrency", &self.concurrency)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Checks a queue or container name: 3-63 characters of lower-case letters, digits and single
/// hyphens, starting and ending with a letter or digit.
pub fn valid_storage_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !name.contains("--")
}

impl QueueConfig {
    /// A configuration with defaults for everything but the account and queue.
    pub fn new(account: StorageAccount, queue: &str) -> Self {
        QueueConfig {
            account,
            queue: queue.to_string(),
            encoding: QueueEncoding::Base64,
            claims_container: "mde-relay-claims".into(),
            concurrency: 8,
            retry: RetryPolicy::default(),
        }
    }

    /// Reads the `RELAY_QUEUE_*` settings and resolves the connection.
    pub fn from_settings(s: &Settings<'_>, retry: RetryPolicy) -> Result<Self, ConfigError> {
        let queue = s.required("RELAY_QUEUE_NAME", "RELAY_SINK=queue")?;
        let queue = queue.trim().to_string();
        if !valid_storage_name(&queue) {
            return Err(ConfigError::new(
                "RELAY_QUEUE_NAME",
                format!(
                    "must be 3-63 lower-case letters, digits and single hyphens, not `{queue}`"
                ),
            ));
        }
        let claims = s.required("RELAY_QUEUE_CLAIMS_CONTAINER", "RELAY_SINK=queue")?;
        let claims = claims.trim().to_string();
        if !valid_storage_name(&claims) {
            return Err(ConfigError::new(
                "RELAY_QUEUE_CLAIMS_CONTAINER",
                format!(
                    "must be 3-63 lower-case letters, digits and single hyphens, not `{claims}`"
                ),
            ));
        }
        let encoding = match s
            .required("RELAY_QUEUE_ENCODING", "RELAY_SINK=queue")?
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "base64" => QueueEncoding::Base64,
            "none" => QueueEncoding::None,
            other => {
                return Err(ConfigError::new(
                    "RELAY_QUEUE_ENCODING",
                    format!("must be base64 or none, not `{other}`"),
                ))
            }
        };
        let connection = s.required("RELAY_QUEUE_CONNECTION", "RELAY_SINK=queue")?;
        let connection = connection.trim();
        let account = StorageAccount::from_lookup(connection, &|k| s.raw(k)).map_err(|e| {
            ConfigError::new(
                &e.setting,
                format!(
                    "{} (the connection named by RELAY_QUEUE_CONNECTION)",
                    e.message
                ),
            )
        })?;
        if account.queue_endpoint().is_none() {
            return Err(ConfigError::new(
                connection,
                format!("has no queue endpoint (set a connection string, or {connection}__queueServiceUri)"),
            ));
        }
        if account.blob_endpoint().is_none() {
            return Err(ConfigError::new(
                connection,
                format!("has no blob endpoint, which the queue sink needs for events too large for a message (set {connection}__blobServiceUri)"),
            ));
        }
        Ok(QueueConfig {
            account,
            queue,
            encoding,
            claims_container: claims,
            concurrency: s.count("RELAY_QUEUE_CONCURRENCY", 1)?,
            retry,
        })
    }
}
