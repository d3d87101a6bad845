//! Formatting requests: a batch becomes request bodies of at most the cap, measured as sent
//! (after formatting and gzip), in order ([`HttpSink::plan`]).

use super::{Destination, HttpSink, Request};
use crate::event::Batch;
use bytes::Bytes;
use std::io::Write;
use std::sync::atomic::Ordering;

impl<D: Destination> HttpSink<D> {
    /// The byte cap in force: the configured one, lowered by what 413 answers taught.
    pub(super) fn cap(&self) -> usize {
        self.max_bytes
            .min(self.learned_limit.load(Ordering::Relaxed))
    }

    /// The uncompressed body of `events`.
    pub fn format(&self, batch: &Batch, events: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        if let (Some(&a), Some(&b)) = (events.first(), events.last()) {
            if self.dest.is_plain_ndjson() && b + 1 - a == events.len() {
                // Consecutive events sit back to back in the batch: the body is one slice.
                let items = batch.items();
                out.extend_from_slice(
                    &batch.ndjson()[items[a].range.start..items[b].range.end + 1],
                );
                return out;
            }
        }
        self.dest.open(&mut out);
        for (k, &i) in events.iter().enumerate() {
            self.dest.append(batch, i, k == 0, &mut out);
        }
        self.dest.close(&mut out);
        out
    }

    /// The body as sent of `events`.
    pub(super) fn body(&self, batch: &Batch, events: &[usize]) -> Bytes {
        let raw = self.format(batch, events);
        Bytes::from(if self.gzip { gzip(&raw) } else { raw })
    }

    /// Formats as many events from `start` as fit `budget` uncompressed bytes (at least one,
    /// at most `max_events`, all allowed in one request). Returns the end index and the body.
    pub(super) fn format_greedy(
        &self,
        batch: &Batch,
        start: usize,
        budget: usize,
    ) -> (usize, Vec<u8>) {
        let n = batch.len().min(start.saturating_add(self.max_events));
        if self.dest.is_plain_ndjson() {
            let items = batch.items();
            let base = items[start].range.start;
            let mut end = start + 1;
            while end < n
                && items[end].range.end + 1 - base <= budget
                && self.dest.same_request(batch, start, end)
            {
                end += 1;
            }
            let (a, b) = (base, items[end - 1].range.end + 1);
            return (end, batch.ndjson()[a..b].to_vec());
        }
        let mut out = Vec::with_capacity(budget.min(batch.bytes() + 64 * (n - start)) + 2);
        self.dest.open(&mut out);
        let mut i = start;
        while i < n {
            if i > start && !self.dest.same_request(batch, start, i) {
                break;
            }
            let mark = out.len();
            self.dest.append(batch, i, i == start, &mut out);
            if i > start && out.len() + self.dest.close_len() > budget {
                out.truncate(mark);
                break;
            }
            i += 1;
        }
        self.dest.close(&mut out);
        (i, out)
    }

    /// The request starting at event `start`. The cut depends only on the batch, the cap in
    /// force and the compression ratio seen so far, so a re-sent batch gets the same requests.
    pub(super) fn next_request(
        &self,
        batch: &Batch,
        start: usize,
        gzip_ratio: &mut f64,
    ) -> Request {
        let cap = self.cap();
        if !self.gzip {
            let (end, body) = self.format_greedy(batch, start, cap.min(self.max_raw_bytes));
            return Request {
                events: (start..end).collect(),
                body: Bytes::from(body),
            };
        }
        // The compressed size is known only after compressing: take an uncompressed budget
        // from the ratio seen so far (with a margin), compress, and if the result overflows,
        // shrink the budget by how much it overflowed and compress again.
        let mut budget = ((cap as f64) * *gzip_ratio * 0.9) as usize;
        loop {
            let (end, raw) =
                self.format_greedy(batch, start, budget.min(self.max_raw_bytes).max(1));
            let body = gzip(&raw);
            let ratio = (raw.len() as f64 / body.len().max(1) as f64).clamp(1.0, 64.0);
            *gzip_ratio = ratio;
            if body.len() <= cap || end - start == 1 {
                return Request {
                    events: (start..end).collect(),
                    body: Bytes::from(body),
                };
            }
            let shrunk = (raw.len() as f64 * cap as f64 / body.len() as f64 * 0.95) as usize;
            budget = shrunk.min(raw.len() - 1);
        }
    }

    /// Event ranges and body sizes of the requests `batch` would be cut into (tests, tools).
    pub fn plan(&self, batch: &Batch) -> Vec<(std::ops::Range<usize>, usize)> {
        let mut ratio = 4.0;
        let mut next = 0;
        let mut out = Vec::new();
        while next < batch.len() {
            let r = self.next_request(batch, next, &mut ratio);
            let end = *r.events.last().expect("a request holds an event") + 1;
            out.push((next..end, r.body.len()));
            next = end;
        }
        out
    }
}

/// Gzips `raw` at level 1: JSON still shrinks several-fold, at a fraction of the default's CPU.
pub fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(raw).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
