//! Property tests of the reader: on arbitrary bytes fed in arbitrary chunkings, the framer, the
//! envelope parser and the row processor never panic, the frames do not depend on the chunking
//! (they match a simple reference model of the export's line rules), and the resume offset is
//! always at the start of a line.

use mde_relay::normalize::Format;
use mde_relay::pipeline::{Filter, RowProcessor};
use mde_relay::rows::framer::OVERSIZE_PREFIX;
use mde_relay::rows::{Frame, Framer, RowParser};
use mde_relay::sink::Batch;
use proptest::prelude::*;

/// A frame, owned, for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum F {
    Line(u64, Vec<u8>),
    Oversize(u64, u64, Vec<u8>),
}

fn own(f: &Frame<'_>) -> F {
    match f {
        Frame::Line { offset, bytes } => F::Line(*offset, bytes.to_vec()),
        Frame::Oversize {
            offset,
            len,
            prefix,
        } => F::Oversize(*offset, *len, prefix.clone()),
    }
}

/// The reference: split at LF; a terminated line loses one CR before its LF; a BOM is dropped
/// at offset 0; blank lines (spaces, tabs, CRs) are skipped; a line longer than `max` (counted
/// before the BOM is dropped) is over-long. The last line without LF is a row only when the
/// input is final (and then keeps any CR). Also returns the resume offset.
fn model(input: &[u8], max: usize, final_: bool) -> (Vec<F>, u64) {
    let mut out = Vec::new();
    let mut start = 0usize;
    loop {
        let nl = input[start..].iter().position(|&b| b == b'\n');
        let (end, terminated) = match nl {
            Some(i) => (start + i, true),
            None => (input.len(), false),
        };
        if !terminated && (!final_ || start == input.len()) {
            return (
                out,
                if final_ {
                    input.len() as u64
                } else {
                    start as u64
                },
            );
        }
        let mut line = &input[start..end];
        // A CR before LF belongs to the terminator; so does a CR ending final input.
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.len() > max {
            out.push(F::Oversize(
                start as u64,
                line.len() as u64,
                line[..OVERSIZE_PREFIX.min(line.len())].to_vec(),
            ));
        } else {
            let (offset, body) = if start == 0 && line.starts_with(b"\xEF\xBB\xBF") {
                (3u64, &line[3..])
            } else {
                (start as u64, line)
            };
            if !body.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                out.push(F::Line(offset, body.to_vec()));
            }
        }
        if !terminated {
            return (out, input.len() as u64);
        }
        start = end + 1;
    }
}

/// A reader handing out the input in the given chunk sizes (cycled).
struct Chunky<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    i: usize,
}

impl std::io::Read for Chunky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()];
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn is_line_start(input: &[u8], offset: u64) -> bool {
    offset == 0 || input.get(offset as usize - 1) == Some(&b'\n')
}

/// Runs the framer over `input` in `chunks`, handing every frame to a parser and two row
/// processors; checks the resume offset after every step. Returns the frames and the final
/// resume offset.
fn drive(input: &[u8], chunks: &[usize], max: usize, final_: bool, read: bool) -> (Vec<F>, u64) {
    let mut framer = Framer::new(0, max);
    let mut parser = RowParser::new();
    let mut procs = [
        RowProcessor::new(Format::Normalized, Filter::default(), max),
        RowProcessor::new(
            Format::Raw,
            Filter {
                tables: vec!["DeviceEvents".into()],
                ..Filter::default()
            },
            max,
        ),
    ];
    let mut batch = Batch::new();
    let mut dead = Vec::new();
    let mut frames = Vec::new();
    let mut take = |f: Frame<'_>, frames: &mut Vec<F>| {
        let owned = own(&f);
        if let Frame::Line { bytes, .. } = &f {
            let _ = parser.parse(bytes);
        }
        for p in procs.iter_mut() {
            p.handle(own_frame(&owned), Some("c"), "b", &mut batch, &mut dead);
        }
        frames.push(owned);
    };
    let mut fed = 0u64;
    let mut reader = Chunky {
        data: input,
        sizes: chunks,
        i: 0,
    };
    loop {
        let n = if read {
            let want = chunks[reader.i % chunks.len()].max(1);
            framer.read_from(&mut reader, want).unwrap()
        } else {
            let want = chunks[reader.i % chunks.len()];
            reader.i += 1;
            let n = want.min(reader.data.len());
            framer.feed(&reader.data[..n]);
            reader.data = &reader.data[n..];
            if n == 0 && !reader.data.is_empty() {
                continue;
            }
            n
        };
        fed += n as u64;
        while let Some(f) = framer.next_frame() {
            take(f, &mut frames);
        }
        let r = framer.resume_offset();
        assert!(r <= fed, "resume offset {r} beyond the {fed} bytes fed");
        assert!(
            is_line_start(input, r),
            "resume offset {r} is not a line start"
        );
        if reader.data.is_empty() {
            break;
        }
    }
    if final_ {
        if let Some(f) = framer.finish() {
            take(f, &mut frames);
        }
        assert!(
            framer.finish().is_none(),
            "finish returns the last line once"
        );
        assert_eq!(framer.resume_offset(), input.len() as u64);
    }
    for p in &procs {
        let s = p.stats;
        assert_eq!(s.rows, frames.len() as u64);
        assert_eq!(s.events + s.dead_lettered + s.skipped, s.rows);
    }
    (frames, framer.resume_offset())
}

fn own_frame(f: &F) -> Frame<'_> {
    match f {
        F::Line(offset, bytes) => Frame::Line {
            offset: *offset,
            bytes,
        },
        F::Oversize(offset, len, prefix) => Frame::Oversize {
            offset: *offset,
            len: *len,
            prefix: prefix.clone(),
        },
    }
}

const ROW: &[u8] = br#"{"time":"2026-11-24T09:00:00Z","tenantId":"t","category":"AdvancedHunting-DeviceEvents","properties":{"Timestamp":"2026-11-24T08:59:00.1234567Z","DeviceId":"d","ReportId":639199803770463703,"AdditionalFields":"{\"a\":\"[1]\"}","MachineGroup":null}}"#;

/// Input pieces: export-like fragments, terminators, a BOM, and arbitrary bytes.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(ROW.to_vec()),
        2 => Just(b"\r\n".to_vec()),
        2 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\xEF\xBB\xBF".to_vec()),
        1 => Just(b"   \t".to_vec()),
        1 => Just(br#"{"category":"AdvancedHunting-X","properties":{"ReportId":1e400,"AdditionalFields":"{\"x\":"}}"#.to_vec()),
        1 => Just(b"[1,2]".to_vec()),
        1 => Just(b"{\"a\":".to_vec()),
        1 => Just(b"\xff\xfe\xc3".to_vec()),
        1 => Just(br#"{"category":"AdvancedHunting-DeviceNetworkEvents","properties":{"AdditionalFields":{"k":"\u00fc\ud83d\ude00"}}}"#.to_vec()),
        4 => prop::collection::vec(any::<u8>(), 1..24),
        2 => Just(ROW[..ROW.len() / 2].to_vec()),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(piece(), 0..24).prop_map(|v| v.concat())
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..4, 1usize..64, 64usize..2048], 1..16)
}

fn max_line() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..16, 16usize..300, Just(1 << 20)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn frames_match_the_model_in_any_chunking(
        input in input(),
        chunks in chunks(),
        max in max_line(),
        final_ in any::<bool>(),
        read in any::<bool>(),
    ) {
        let (expected, resume) = model(&input, max, final_);
        let whole = drive(&input, &[input.len().max(1)], max, final_, false);
        prop_assert_eq!(&whole.0, &expected);
        prop_assert_eq!(whole.1, resume);
        let chunked = drive(&input, &chunks, max, final_, read);
        prop_assert_eq!(&chunked.0, &expected);
        prop_assert_eq!(chunked.1, resume);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..4096),
        chunks in chunks(),
        max in max_line(),
        final_ in any::<bool>(),
    ) {
        let (expected, resume) = model(&input, max, final_);
        let got = drive(&input, &chunks, max, final_, false);
        prop_assert_eq!(&got.0, &expected);
        prop_assert_eq!(got.1, resume);
        // The parser on the raw input as one line, too.
        let _ = RowParser::new().parse(&input);
    }
}
