//! Message text encoding of the queue sink: base64 (what a Functions queue trigger decodes) or
//! the raw text, and what each costs against the 64 KiB message limit.

use super::QueueSink;
use crate::sink::SinkError;
use base64::Engine;

/// Largest message text, in bytes, the service accepts.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How message text is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueEncoding {
    /// Base64 of the NDJSON (the Functions queue trigger's default).
    Base64,
    /// The NDJSON text itself.
    None,
}

impl QueueEncoding {
    /// The largest NDJSON payload a message can carry before the encoding.
    pub(super) fn budget(self) -> usize {
        match self {
            // 4 output bytes per 3 input bytes, padded: 49152 raw bytes → 65536.
            QueueEncoding::Base64 => MAX_MESSAGE_BYTES / 4 * 3,
            QueueEncoding::None => MAX_MESSAGE_BYTES,
        }
    }

    /// What `bytes` cost against [`Self::budget`]: raw length for base64, the XML-escaped
    /// length (`<`, `>`, `&` as the SDK's serializer escapes them) for none.
    pub(super) fn cost(self, bytes: &[u8]) -> usize {
        match self {
            QueueEncoding::Base64 => bytes.len(),
            QueueEncoding::None => {
                bytes.len()
                    + bytes
                        .iter()
                        .map(|&b| match b {
                            b'<' | b'>' => 3,
                            b'&' => 4,
                            _ => 0,
                        })
                        .sum::<usize>()
            }
        }
    }
}

impl QueueSink {
    /// The message text of an NDJSON payload.
    pub(super) fn encode(&self, raw: &[u8]) -> Result<String, SinkError> {
        match self.encoding {
            QueueEncoding::Base64 => Ok(base64::engine::general_purpose::STANDARD.encode(raw)),
            QueueEncoding::None => String::from_utf8(raw.to_vec()).map_err(|_| SinkError::Permanent {
                sink: "queue",
                message: "an event is not valid UTF-8 and cannot be sent with RELAY_QUEUE_ENCODING=none".into(),
            }),
        }
    }
}
