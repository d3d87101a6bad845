//! The file sink: appends NDJSON to a file. With `durable` set (the `RELAY_SINK=file` setting)
//! every batch is flushed and fsynced before it counts as acknowledged, so a checkpoint never
//! runs ahead of what is on disk. The CLI's `--out FILE` skips the per-batch fsync for speed and
//! syncs once at the end.

use super::{Sink, SinkError};
use crate::event::Batch;
use async_trait::async_trait;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Appends events to a file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
    durable: bool,
}

impl FileSink {
    /// Opens `path` for appending (created if missing). `truncate` starts it empty instead.
    pub fn open(path: &Path, durable: bool, truncate: bool) -> std::io::Result<Self> {
        let mut o = OpenOptions::new();
        o.create(true);
        if truncate {
            o.write(true).truncate(true);
        } else {
            o.append(true);
        }
        let mut f = o.open(path)?;
        if !truncate {
            end_torn_line(path, &mut f)?;
        }
        Ok(FileSink {
            path: path.to_path_buf(),
            out: Mutex::new(BufWriter::with_capacity(1 << 20, f)),
            durable,
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(source: std::io::Error) -> SinkError {
        SinkError::Io {
            sink: "file",
            source,
        }
    }
}

/// A crash in the middle of a write can leave a partial last line. Ending it with a newline
/// keeps the next event on a line of its own, so one torn event never swallows a whole one.
fn end_torn_line(path: &Path, f: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut reader = File::open(path)?;
    reader.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    reader.read_exact(&mut last)?;
    if last[0] != b'\n' {
        f.write_all(b"\n")?;
    }
    Ok(())
}

#[async_trait]
impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn send(&self, batch: &Batch) -> Result<(), SinkError> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(batch.ndjson()).map_err(Self::io)?;
        if self.durable {
            out.flush().map_err(Self::io)?;
            out.get_ref().sync_data().map_err(Self::io)?;
        }
        Ok(())
    }

    async fn finish(&self) -> Result<(), SinkError> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.flush().map_err(Self::io)?;
        out.get_ref().sync_data().map_err(Self::io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    #[tokio::test]
    async fn appends_and_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.ndjson");
        std::fs::write(&p, "old\n").unwrap();
        let s = FileSink::open(&p, true, false).unwrap();
        let mut b = Batch::new();
        b.push_json(EventId([b'0'; 32]), "T".into(), None, b"{}");
        s.send(&b).await.unwrap();
        // Durable: visible before finish.
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\n{}\n");
    }

    #[tokio::test]
    async fn a_torn_last_line_is_ended_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.ndjson");
        std::fs::write(&p, "{\"id\":\"a\"}\n{\"id\":\"b").unwrap();
        let s = FileSink::open(&p, true, false).unwrap();
        let mut b = Batch::new();
        b.push_json(EventId([b'0'; 32]), "T".into(), None, b"{}");
        s.send(&b).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"id\":\"a\"}\n{\"id\":\"b\n{}\n"
        );
    }
}
