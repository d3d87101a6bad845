//! parse → normalize → serialize throughput on one core, over generated export rows held in
//! memory (no disk, no sink): the cost of the relay's own work per byte.
//!
//! `cargo bench --bench pipeline` (set `BENCH_MB` to change the input size, default 200).
//! Pin it to one core for comparable numbers: `taskset -c 0 cargo bench --bench pipeline`.

use mde_relay::gen::{generate, Limit};
use mde_relay::normalize::Format;
use mde_relay::pipeline::{Filter, RowProcessor};
use mde_relay::rows::{Framer, DEFAULT_MAX_LINE};
use mde_relay::sink::Batch;
use std::time::Instant;

fn run(table: &str, format: Format, data: &[u8]) -> (f64, f64, u64) {
    let mut best = f64::MAX;
    let mut events = 0;
    for _ in 0..3 {
        let mut proc = RowProcessor::new(format, Filter::default(), DEFAULT_MAX_LINE);
        let mut framer = Framer::new(0, DEFAULT_MAX_LINE);
        let mut batch = Batch::new();
        let mut dead = Vec::new();
        let mut out_bytes = 0u64;
        let t = Instant::now();
        for chunk in data.chunks(1 << 20) {
            framer.feed(chunk);
            while let Some(f) = framer.next_frame() {
                proc.handle(f, Some("c"), "b", &mut batch, &mut dead);
                if batch.len() >= 500 {
                    out_bytes += batch.bytes() as u64;
                    batch.clear();
                }
            }
        }
        out_bytes += batch.bytes() as u64;
        std::hint::black_box(out_bytes);
        best = best.min(t.elapsed().as_secs_f64());
        events = proc.stats.events;
        assert_eq!(
            proc.stats.dead_lettered, 0,
            "{table}: generated rows must be valid"
        );
    }
    (data.len() as f64 / best / 1e6, events as f64 / best, events)
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: then only a quick smoke
    // run, so the test suite stays fast.
    let benching = std::env::args().any(|a| a == "--bench");
    let default_mb = if benching { 200 } else { 1 };
    let mb: u64 = std::env::var("BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_mb);
    println!("pipeline benchmark: {mb} MB of generated rows per table, best of 3, one thread");
    for table in ["DeviceProcessEvents", "DeviceNetworkEvents"] {
        let mut data = Vec::with_capacity((mb << 20) as usize + (1 << 16));
        generate(table, 1, Limit::Bytes(mb * 1_000_000), &mut data).expect("generate rows");
        for format in [Format::Normalized, Format::Raw, Format::Ocsf] {
            let (mbs, eps, events) = run(table, format, &data);
            println!(
                "{table:<22} {:<10} {mbs:>8.1} MB/s {eps:>10.0} events/s ({events} events, {:.0} bytes/row)",
                format!("{format:?}"),
                data.len() as f64 / events as f64
            );
        }
    }
}
