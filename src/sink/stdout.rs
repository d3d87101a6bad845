//! The stdout sink: NDJSON on standard output, flushed after each batch.

use super::{Sink, SinkError};
use crate::event::Batch;
use async_trait::async_trait;
use std::io::Write;

/// Writes events to standard output.
#[derive(Debug, Default)]
pub struct StdoutSink;

#[async_trait]
impl Sink for StdoutSink {
    fn name(&self) -> &'static str {
        "stdout"
    }

    async fn send(&self, batch: &Batch) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        out.write_all(batch.ndjson())
            .and_then(|_| out.flush())
            .map_err(|source| SinkError::Io {
                sink: "stdout",
                source,
            })
    }
}
