//! The file sink: appends NDJSON to a file. With `durable` set (the `RELAY_SINK=file` setting)
//! every batch is flushed and fsynced before it counts as acknowledged, so a checkpoint never
//! runs ahead of what is on disk. The CLI's `--out FILE` skips the per-batch fsync for speed and
//! syncs once at the end.

use super::{Sink, SinkError};
use crate::config::{ConfigError, Settings};
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

    /// Opens `path` for `RELAY_SINK=file` (durable, appending): the start-up check that it is
    /// writable, failing with a message that names `RELAY_FILE_PATH` and where to write.
    pub fn open_setting(path: &Path) -> Result<Self, ConfigError> {
        Self::open(path, true, false).map_err(|e| {
            ConfigError::new(
                "RELAY_FILE_PATH",
                format!(
                    "cannot be opened for appending ({}): {e}{FLEX_WRITABLE}",
                    path.display()
                ),
            )
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

/// Where a file sink can write on Azure Functions, for the messages of [`path_setting`].
const FLEX_WRITABLE: &str = " (on Azure Functions Flex Consumption the app's package mount is \
     read-only: use a file under /tmp, e.g. /tmp/mde-relay-events.ndjson, which each instance \
     keeps only while it runs)";

/// `RELAY_FILE_PATH` of `RELAY_SINK=file`: set, and, under the Functions host (which sets
/// `FUNCTIONS_CUSTOMHANDLER_PORT`), absolute — a relative path would land in the working
/// directory, the read-only package mount. Writability is checked when the sink is built.
pub(super) fn path_setting(s: &Settings<'_>) -> Result<PathBuf, ConfigError> {
    let raw = s.value("RELAY_FILE_PATH").ok_or_else(|| {
        ConfigError::new(
            "RELAY_FILE_PATH",
            format!("is not set (needed by RELAY_SINK=file){FLEX_WRITABLE}"),
        )
    })?;
    let path = PathBuf::from(raw.trim());
    if s.raw("FUNCTIONS_CUSTOMHANDLER_PORT").is_some() && !path.is_absolute() {
        return Err(ConfigError::new(
            "RELAY_FILE_PATH",
            format!(
                "must be an absolute path under the Functions host, not `{}`{FLEX_WRITABLE}",
                path.display()
            ),
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    /// Issue 16, point 4: on Flex the package mount is read-only; messages name the setting
    /// and /tmp.
    #[test]
    fn the_path_setting_is_set_absolute_under_the_host_and_writable() {
        use crate::sink::config::SinkConfig;
        let parse = |pairs: &[(&str, &str)]| {
            let m: std::collections::HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            SinkConfig::from_settings(&Settings::new(move |k| m.get(k).cloned()))
        };
        let e = parse(&[("RELAY_SINK", "file")]).unwrap_err();
        assert_eq!(e.setting, "RELAY_FILE_PATH");
        assert!(e.to_string().contains("/tmp"), "{e}");
        // Under the Functions host a relative path would resolve into the read-only package.
        let host = [
            ("RELAY_SINK", "file"),
            ("RELAY_FILE_PATH", "events.ndjson"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "7071"),
        ];
        let e = parse(&host).unwrap_err();
        assert_eq!(e.setting, "RELAY_FILE_PATH");
        assert!(e.to_string().contains("absolute"), "{e}");
        assert!(parse(&host[..2]).is_ok(), "the CLI takes relative paths");
        // Not writable: the start-up build names the setting and where to write.
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir/events.ndjson");
        let c = parse(&[
            ("RELAY_SINK", "file"),
            ("RELAY_FILE_PATH", missing.to_str().unwrap()),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "7071"),
        ])
        .unwrap();
        let e = c
            .build()
            .err()
            .expect("a file in a missing directory cannot be opened");
        assert_eq!(e.setting, "RELAY_FILE_PATH");
        assert!(e.to_string().contains("under /tmp"), "{e}");
    }

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
