//! Cutting a byte stream into rows (lines) with their absolute byte offsets.
//!
//! The [`Framer`] owns one reusable buffer. Callers feed it chunks (from a file, or from ranged
//! reads of an append blob) and pull complete lines out. It never holds more than one chunk plus
//! one partial line, and a line longer than the configured maximum is discarded while it streams
//! past (only a short prefix is kept for the dead-letter record), so memory stays flat whatever
//! the input size.
//!
//! A final line without terminator is only a row when the caller says the input is final
//! ([`Framer::finish`]); otherwise it is held back and [`Framer::resume_offset`] points at its
//! first byte, which is where the next read of a growing blob must start.

/// Default maximum row length: 16 MiB.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

/// How many bytes of an over-long line are kept for its dead-letter record.
pub const OVERSIZE_PREFIX: usize = 4096;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One item cut from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its terminator (LF or CRLF) and without a leading BOM.
    Line {
        /// Absolute byte offset of the line's first byte in the source.
        offset: u64,
        /// The line's bytes.
        bytes: &'a [u8],
    },
    /// A line longer than the maximum; it was skipped.
    Oversize {
        /// Absolute byte offset of the line's first byte.
        offset: u64,
        /// Its full length in bytes (without terminator).
        len: u64,
        /// Its first [`OVERSIZE_PREFIX`] bytes.
        prefix: Vec<u8>,
    },
}

/// State of an over-long line being skipped.
#[derive(Debug)]
struct Discard {
    start: u64,
    prefix: Vec<u8>,
    /// Last byte seen, in case it is the CR of a CRLF split across chunks.
    last: u8,
}

/// Cuts lines out of fed chunks. See the module documentation.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    pos: usize,
    /// Absolute offset of `buf[0]`.
    base: u64,
    max_line: usize,
    /// Set while skipping an over-long line.
    discarding: Option<Discard>,
    /// A finished over-long line waiting to be returned.
    pending_oversize: Option<Frame<'static>>,
    /// Offset up to which `buf` was already searched for a terminator (relative to `pos`).
    scanned: usize,
}

impl Framer {
    /// A framer whose first fed byte is at absolute `offset` of the source.
    pub fn new(offset: u64, max_line: usize) -> Self {
        Framer {
            buf: Vec::new(),
            pos: 0,
            base: offset,
            max_line: max_line.max(1),
            discarding: None,
            pending_oversize: None,
            scanned: 0,
        }
    }

    /// Appends a chunk of the source (the bytes right after everything fed so far).
    pub fn feed(&mut self, data: &[u8]) {
        // Drop consumed bytes first so the buffer holds at most one partial line plus `data`.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if let Some(d) = &mut self.discarding {
            // Skipping an over-long line: look for its end without buffering it.
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    let end = self.base + nl as u64; // offset of '\n'
                    let cr = if nl > 0 { data[nl - 1] } else { d.last } == b'\r';
                    let len = end - d.start - cr as u64;
                    top_up(&mut d.prefix, &data[..nl]);
                    let Discard {
                        start, mut prefix, ..
                    } = self.discarding.take().expect("checked above");
                    prefix.truncate(OVERSIZE_PREFIX.min(len as usize));
                    self.pending_oversize = Some(Frame::Oversize {
                        offset: start,
                        len,
                        prefix,
                    });
                    self.base += nl as u64 + 1;
                    self.buf.extend_from_slice(&data[nl + 1..]);
                    self.scanned = 0;
                }
                None => {
                    top_up(&mut d.prefix, data);
                    if let Some(&b) = data.last() {
                        d.last = b;
                    }
                    self.base += data.len() as u64;
                }
            }
            return;
        }
        self.buf.extend_from_slice(data);
    }

    /// Reads up to `max` bytes from `r` straight into the buffer (saving the copy [`feed`]
    /// makes) and returns how many were read; 0 means end of input.
    ///
    /// [`feed`]: Framer::feed
    pub fn read_from(&mut self, r: &mut impl std::io::Read, max: usize) -> std::io::Result<usize> {
        if self.discarding.is_some() {
            // Skipping an over-long line: go through `feed`, which does not buffer it.
            let mut tmp = vec![0u8; max.min(1 << 16)];
            let n = r.read(&mut tmp)?;
            self.feed(&tmp[..n]);
            return Ok(n);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + max, 0);
        let n = match r.read(&mut self.buf[old..]) {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(old);
                return Err(e);
            }
        };
        self.buf.truncate(old + n);
        Ok(n)
    }

    /// The next complete line, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        if let Some(f) = self.pending_oversize.take() {
            return Some(f);
        }
        loop {
            if self.discarding.is_some() {
                return None;
            }
            let avail = &self.buf[self.pos..];
            match memchr::memchr(b'\n', &avail[self.scanned..]) {
                Some(i) => {
                    let nl = self.scanned + i;
                    let start = self.pos;
                    let offset = self.base + start as u64;
                    self.pos += nl + 1;
                    self.scanned = 0;
                    let mut end = start + nl;
                    if end > start && self.buf[end - 1] == b'\r' {
                        end -= 1;
                    }
                    if end - start > self.max_line {
                        let len = end - start;
                        return Some(Frame::Oversize {
                            offset,
                            len: len as u64,
                            prefix: self.buf[start..start + OVERSIZE_PREFIX.min(len)].to_vec(),
                        });
                    }
                    let (offset, skip) = bom_skip(offset, &self.buf[start..end]);
                    if is_blank(&self.buf[start + skip..end]) {
                        continue;
                    }
                    return Some(Frame::Line {
                        offset,
                        bytes: &self.buf[start + skip..end],
                    });
                }
                None => {
                    self.scanned = avail.len();
                    // +1 leaves room for a CR that may be followed by the LF in the next chunk.
                    if avail.len() > self.max_line + 1 {
                        let offset = self.base + self.pos as u64;
                        let d = Discard {
                            start: offset,
                            prefix: avail[..OVERSIZE_PREFIX.min(avail.len())].to_vec(),
                            last: *avail.last().expect("non-empty"),
                        };
                        self.base = offset + avail.len() as u64;
                        self.buf.clear();
                        self.pos = 0;
                        self.scanned = 0;
                        self.discarding = Some(d);
                    }
                    return None;
                }
            }
        }
    }

    /// Called when the input is final (a local file, a closed blob): returns the last line if
    /// it has no terminator. After this, [`Framer::resume_offset`] is the end of the input.
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        if let Some(f) = self.pending_oversize.take() {
            return Some(f);
        }
        if let Some(Discard {
            start, mut prefix, ..
        }) = self.discarding.take()
        {
            let len = self.base - start;
            prefix.truncate(OVERSIZE_PREFIX);
            return Some(Frame::Oversize {
                offset: start,
                len,
                prefix,
            });
        }
        let start = self.pos;
        let offset = self.base + start as u64;
        self.pos = self.buf.len();
        self.scanned = 0;
        let line = &self.buf[start..];
        if line.is_empty() {
            return None;
        }
        if line.len() > self.max_line {
            return Some(Frame::Oversize {
                offset,
                len: line.len() as u64,
                prefix: line[..OVERSIZE_PREFIX.min(line.len())].to_vec(),
            });
        }
        let (offset, skip) = bom_skip(offset, line);
        let line = &line[skip..];
        if is_blank(line) {
            return None;
        }
        Some(Frame::Line {
            offset,
            bytes: line,
        })
    }

    /// Absolute offset of the first byte not yet returned as part of a frame: the start of the
    /// held-back partial line, or the end of the input when everything was consumed. This is the
    /// offset a checkpoint stores.
    pub fn resume_offset(&self) -> u64 {
        match &self.discarding {
            Some(d) => d.start,
            None => self.base + self.pos as u64,
        }
    }

    /// Bytes currently buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }
}

fn top_up(prefix: &mut Vec<u8>, data: &[u8]) {
    let room = (OVERSIZE_PREFIX + 1).saturating_sub(prefix.len());
    prefix.extend_from_slice(&data[..room.min(data.len())]);
}

/// The offset of a line's content and how many bytes of BOM precede it (a BOM only counts at
/// offset 0 of the source).
fn bom_skip(offset: u64, line: &[u8]) -> (u64, usize) {
    if offset == 0 && line.starts_with(BOM) {
        (3, 3)
    } else {
        (offset, 0)
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Collected = (Vec<(u64, Vec<u8>)>, Vec<u64>, u64);

    fn collect(chunks: &[&[u8]], max: usize, fin: bool) -> Collected {
        let mut f = Framer::new(0, max);
        let mut lines = vec![];
        let mut over = vec![];
        let mut take = |fr: Frame<'_>| match fr {
            Frame::Line { offset, bytes } => lines.push((offset, bytes.to_vec())),
            Frame::Oversize { offset, .. } => over.push(offset),
        };
        for c in chunks {
            f.feed(c);
            while let Some(fr) = f.next_frame() {
                take(fr);
            }
        }
        if fin {
            if let Some(fr) = f.finish() {
                take(fr);
            }
        }
        (lines, over, f.resume_offset())
    }

    #[test]
    fn crlf_and_lf_with_offsets() {
        let (l, _, r) = collect(&[b"{\"a\":1}\r\n{\"b\":2}\n"], 100, false);
        assert_eq!(
            l,
            vec![(0, b"{\"a\":1}".to_vec()), (9, b"{\"b\":2}".to_vec())]
        );
        assert_eq!(r, 17);
    }

    #[test]
    fn unterminated_tail_held_back_unless_final() {
        let input: &[u8] = b"one\r\ntwo\r\nthr";
        let (l, _, r) = collect(&[input], 100, false);
        assert_eq!(l.len(), 2);
        assert_eq!(r, 10, "resume point is the start of the partial line");
        let (l, _, r) = collect(&[input], 100, true);
        assert_eq!(l.last().unwrap(), &(10, b"thr".to_vec()));
        assert_eq!(r, 13);
    }

    #[test]
    fn bom_only_at_offset_zero_and_blank_lines_skipped() {
        let (l, _, _) = collect(&[b"\xEF\xBB\xBFa\r\n\r\n   \n\xEF\xBB\xBFb\n"], 100, true);
        assert_eq!(l, vec![(3, b"a".to_vec()), (12, b"\xEF\xBB\xBFb".to_vec())]);
    }

    #[test]
    fn crlf_split_across_chunks() {
        let (l, _, r) = collect(&[b"abc\r", b"\ndef\r", b"\n"], 100, false);
        assert_eq!(l, vec![(0, b"abc".to_vec()), (5, b"def".to_vec())]);
        assert_eq!(r, 10);
    }

    #[test]
    fn oversize_line_is_skipped_in_pieces_and_reading_continues() {
        let big = [b'x'; 50];
        let mut chunks: Vec<&[u8]> = vec![b"ok\n"];
        for c in big.chunks(7) {
            chunks.push(c);
        }
        chunks.push(b"\r\nnext\n");
        let (l, o, r) = collect(&chunks, 10, false);
        assert_eq!(l, vec![(0, b"ok".to_vec()), (55, b"next".to_vec())]);
        assert_eq!(o, vec![3]);
        assert_eq!(r, 60);
    }

    #[test]
    fn oversize_length_excludes_crlf() {
        let mut f = Framer::new(0, 4);
        f.feed(b"0123456789");
        assert!(f.next_frame().is_none());
        f.feed(b"\r\n");
        match f.next_frame() {
            Some(Frame::Oversize {
                offset,
                len,
                prefix,
            }) => {
                assert_eq!((offset, len), (0, 10));
                assert_eq!(prefix, b"0123456789");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn read_from_matches_feed() {
        let data: &[u8] = b"a\r\nbb\n\xEF\xBB\xBFc\nddddddddddddddddddd\nlast";
        let mut r = data;
        let mut f = Framer::new(0, 8);
        let mut got = vec![];
        loop {
            let n = f.read_from(&mut r, 3).unwrap();
            while let Some(fr) = f.next_frame() {
                got.push(format!("{fr:?}"));
            }
            if n == 0 {
                if let Some(fr) = f.finish() {
                    got.push(format!("{fr:?}"));
                }
                break;
            }
        }
        let mut want = vec![];
        let mut f = Framer::new(0, 8);
        for c in data.chunks(3) {
            f.feed(c);
            while let Some(fr) = f.next_frame() {
                want.push(format!("{fr:?}"));
            }
        }
        if let Some(fr) = f.finish() {
            want.push(format!("{fr:?}"));
        }
        assert_eq!(got, want);
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn resume_offset_with_nonzero_start() {
        let mut f = Framer::new(1000, 100);
        f.feed(b"a\nbb");
        assert!(matches!(
            f.next_frame(),
            Some(Frame::Line { offset: 1000, .. })
        ));
        assert!(f.next_frame().is_none());
        assert_eq!(f.resume_offset(), 1002);
    }
}
