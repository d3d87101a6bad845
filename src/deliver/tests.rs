use super::*;
use crate::event::EventId;
use crate::sink::SinkError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A sink whose answer to batch `n` takes `delays[n % len]` ms; batches whose first event's
/// JSON contains `fail` fail, and events containing `refuse` are refused one by one.
struct Slow {
    delays: Vec<u64>,
    calls: AtomicUsize,
    now: AtomicUsize,
    peak: AtomicUsize,
    done: Mutex<Vec<String>>,
    limit: Option<usize>,
}

impl Slow {
    fn new(delays: &[u64]) -> Self {
        Slow {
            delays: delays.to_vec(),
            calls: AtomicUsize::new(0),
            now: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            done: Mutex::new(Vec::new()),
            limit: None,
        }
    }
}

#[async_trait::async_trait]
impl Sink for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn max_in_flight(&self) -> Option<usize> {
        self.limit
    }
    async fn send(&self, _: &Batch) -> Result<(), SinkError> {
        unreachable!("the pipeline delivers")
    }
    async fn deliver(&self, batch: &Batch) -> Result<Vec<Rejected>, SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let at = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(at, Ordering::SeqCst);
        let ms = self.delays[n % self.delays.len()];
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        let first = String::from_utf8(batch.event(0).to_vec()).unwrap();
        if first.contains("fail") {
            return Err(SinkError::Permanent {
                sink: "slow",
                message: "nope".into(),
            });
        }
        self.done.lock().unwrap().push(first);
        let mut refused = Vec::new();
        for i in 0..batch.len() {
            if batch.event(i).windows(6).any(|w| w == b"refuse") {
                refused.push(Rejected {
                    index: i,
                    reason: "mapping".into(),
                });
            }
        }
        Ok(refused)
    }
}

/// Records what was stored, and how many batches had been acknowledged to the caller then.
#[derive(Default)]
struct Dead(Mutex<Vec<DeadLetter>>);

#[async_trait::async_trait]
impl DeadLetterSink for Dead {
    async fn store(&self, records: &[DeadLetter]) -> anyhow::Result<()> {
        self.0.lock().unwrap().extend_from_slice(records);
        Ok(())
    }
    fn location(&self) -> String {
        "memory".into()
    }
}

fn batch(text: &str) -> Batch {
    let mut b = Batch::new();
    b.push_json(EventId([b'a'; 32]), "T".into(), None, text.as_bytes());
    b
}

fn limits(in_flight: usize) -> Limits {
    Limits {
        max_events: 1,
        max_bytes: 1 << 20,
        in_flight,
    }
}

/// Later batches answer first; acknowledgements still come back in submission order, and the
/// window of batches in flight is filled and never exceeded.
#[tokio::test]
async fn acknowledgements_come_back_in_order() {
    let sink = Arc::new(Slow::new(&[80, 10, 40, 5, 60, 1]));
    let d = Delivery::new(sink.clone(), limits(4));
    let mut p = d.pipeline::<u64>(None, None);
    let mut got = Vec::new();
    for i in 0..12u64 {
        p.submit(batch(&format!("{{\"n\":{i}}}")), Vec::new(), i)
            .await
            .unwrap();
        while let Some(a) = p.take_acked() {
            got.push(a.mark);
        }
    }
    p.flush().await.unwrap();
    while let Some(a) = p.take_acked() {
        got.push(a.mark);
    }
    assert_eq!(got, (0..12).collect::<Vec<_>>());
    assert_eq!(sink.peak.load(Ordering::SeqCst), 4);
    assert_eq!(p.stats().in_flight_max, 4);
    assert_eq!(p.stats().batches, 12);
    assert!(p.stats().sink_wait_ms > 0);
}

/// A batch that fails ends the run: only the batches before it are acknowledged, even those
/// after it that the sink took.
#[tokio::test]
async fn a_failure_stops_the_watermark_before_the_failed_batch() {
    let sink = Arc::new(Slow::new(&[50, 50, 1, 1, 1]));
    let d = Delivery::new(sink.clone(), limits(8));
    let mut p = d.pipeline::<u64>(None, None);
    let mut err = None;
    for i in 0..5u64 {
        let text = if i == 1 {
            "{\"fail\":1}".to_string()
        } else {
            format!("{{\"n\":{i}}}")
        };
        if let Err(e) = p.submit(batch(&text), Vec::new(), i).await {
            err = Some(e);
            break;
        }
    }
    let err = match err {
        Some(e) => e,
        None => p.flush().await.unwrap_err(),
    };
    assert!(format!("{err:#}").contains("nope"), "{err:#}");
    let mut got = Vec::new();
    while let Some(a) = p.take_acked() {
        got.push(a.mark);
    }
    assert_eq!(got, vec![0], "nothing past the failed batch");
}

/// Row dead letters and refused events are stored before their batch is handed back; without a
/// dead-letter sink they come back to the caller.
#[tokio::test]
async fn dead_letters_are_stored_before_the_acknowledgement() {
    let sink = Arc::new(Slow::new(&[30, 1]));
    let d = Delivery::new(sink.clone(), limits(4));
    let dead = Arc::new(Dead::default());
    let mut p = d.pipeline::<usize>(Some(dead.clone()), None);
    let row = |o| DeadLetter {
        reason: "bad".into(),
        container: None,
        blob: "b".into(),
        offset: o,
        length: 1,
        original: Some("x".into()),
        original_base64: None,
        truncated: false,
        rejected_by: None,
        event_id: None,
    };
    p.submit(batch("{\"refuse\":1}"), vec![row(1)], 0)
        .await
        .unwrap();
    // Only dead letters, no events: nothing is sent, but it stays in order.
    p.submit(Batch::new(), vec![row(2)], 1).await.unwrap();
    p.submit(batch("{\"n\":2}"), Vec::new(), 2).await.unwrap();
    p.flush().await.unwrap();
    let mut seen = Vec::new();
    while let Some(a) = p.take_acked() {
        seen.push((a.mark, a.refused.len(), a.dead.len()));
    }
    assert_eq!(seen, vec![(0, 1, 0), (1, 0, 0), (2, 0, 0)]);
    let stored = dead.0.lock().unwrap().clone();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].offset, 1);
    assert_eq!(stored[1].rejected_by.as_deref(), Some("slow"));
    assert_eq!(stored[2].offset, 2);
    assert_eq!(p.stats().batches, 2);
    assert_eq!(p.stats().refused, 1);

    let mut p = d.pipeline::<usize>(None, None);
    p.submit(batch("{\"refuse\":1}"), vec![row(7)], 0)
        .await
        .unwrap();
    p.flush().await.unwrap();
    let a = p.take_acked().unwrap();
    assert_eq!((a.refused.len(), a.dead.len()), (1, 1));
}

/// A sink that writes in order (file, stdout) gets one batch at a time.
#[tokio::test]
async fn an_ordered_sink_gets_one_batch_at_a_time() {
    let mut s = Slow::new(&[20, 1]);
    s.limit = Some(1);
    let sink = Arc::new(s);
    let d = Delivery::new(sink.clone(), limits(8));
    assert_eq!(d.window(), 1);
    let mut p = d.pipeline::<u64>(None, None);
    for i in 0..6u64 {
        p.submit(batch(&format!("{{\"n\":{i}}}")), Vec::new(), i)
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    assert_eq!(sink.peak.load(Ordering::SeqCst), 1);
    let done = sink.done.lock().unwrap().clone();
    let want: Vec<String> = (0..6).map(|i| format!("{{\"n\":{i}}}")).collect();
    assert_eq!(done, want);
}

/// A sink call still running at `send_by` fails the run.
#[tokio::test]
async fn sends_are_bounded_by_the_deadline() {
    let sink = Arc::new(Slow::new(&[5_000]));
    let d = Delivery::new(sink, limits(2));
    let mut p = d.pipeline::<u64>(None, Some(Instant::now() + Duration::from_millis(50)));
    p.submit(batch("{}"), Vec::new(), 0).await.unwrap();
    let started = Instant::now();
    let e = p.flush().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(format!("{e:#}").contains("deadline"), "{e:#}");
}

#[test]
fn checkpoints_coalesce_by_bytes_and_time() {
    let mut c = Coalesce::new(Duration::from_secs(3600), 100);
    assert!(!c.due() && !c.dirty());
    c.advanced(60);
    assert!(c.dirty() && !c.due());
    c.advanced(40);
    assert!(c.due());
    c.wrote();
    assert!(!c.due() && c.written == 1);
    let mut c = Coalesce::new(Duration::ZERO, u64::MAX);
    assert!(!c.due(), "nothing moved, nothing to write");
    c.advanced(1);
    assert!(c.due());
}
