//! Cutting a batch into queue messages: as many NDJSON lines, in batch order, as fit one
//! message once encoded; an event too large on its own goes by claim check ([`super::claim`]).

use super::QueueSink;
use crate::event::Batch;

/// One message to send: its NDJSON payload (before encoding), how many events it carries, and
/// which of them go by claim check.
pub(super) struct Message {
    pub(super) raw: Vec<u8>,
    pub(super) events: usize,
    pub(super) claims: Vec<usize>,
}

impl QueueSink {
    /// Cuts `batch` into messages, in order, each within [`super::MAX_MESSAGE_BYTES`] once encoded.
    pub(super) fn plan(&self, batch: &Batch) -> Vec<Message> {
        let budget = self.encoding.budget();
        let mut out = Vec::new();
        let mut cur = Message {
            raw: Vec::new(),
            events: 0,
            claims: Vec::new(),
        };
        let mut used = 0;
        for i in 0..batch.len() {
            let ev = batch.event(i);
            let cost = self.encoding.cost(ev) + 1;
            let (line, claim) = if cost > budget {
                (
                    std::borrow::Cow::Owned(self.claim_reference(batch, i)),
                    true,
                )
            } else {
                (std::borrow::Cow::Borrowed(ev), false)
            };
            let cost = if claim {
                self.encoding.cost(&line) + 1
            } else {
                cost
            };
            if used + cost > budget && cur.events > 0 {
                out.push(std::mem::replace(
                    &mut cur,
                    Message {
                        raw: Vec::new(),
                        events: 0,
                        claims: Vec::new(),
                    },
                ));
                used = 0;
            }
            cur.raw.extend_from_slice(&line);
            cur.raw.push(b'\n');
            cur.events += 1;
            if claim {
                cur.claims.push(i);
            }
            used += cost;
        }
        if cur.events > 0 {
            out.push(cur);
        }
        out
    }
}
