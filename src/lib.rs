//! mde-relay: turns the Microsoft Defender XDR streaming export into a clean, reliable event
//! feed.
//!
//! Data flows one way, one module per stage:
//!
//! * [`rows`]: cutting export blobs and files into rows ([`rows::framer`]) and parsing each
//!   row ([`rows::RowParser`]). **A row is parsed here.**
//! * [`tables`]: which tables exist, their containers and their JSON-in-string columns.
//! * [`event`]: what passes between the stages ([`event::Batch`], [`event::EventId`],
//!   [`event::Rejected`], [`event::SourceRef`]); it depends on no stage.
//! * [`normalize`]: a row becomes an event of schema `mde-relay/v1` (docs/schema.md).
//! * [`pipeline`]: the per-row step (parse, filter, normalize or dead-letter) every entry point
//!   shares.
//! * [`sink`]: the [`sink::Sink`] trait and one file per destination. **A batch is sent here.**
//! * [`deliver`]: batches in flight to the sink, acknowledged in order (the watermark a
//!   checkpoint may move to), dead letters stored first. **A batch is handed over here.**
//! * [`deadletter`]: rows that could not become events, with reason and location.
//! * [`gen`]: synthetic export rows for tests and benchmarks.
//! * [`source`]: where export blobs are read from (Azure Storage or a directory), behind a
//!   byte-range trait that also enforces the allowed containers.
//! * [`state`]: per-blob checkpoints with leases (Azure Storage or a directory). **An offset is
//!   saved here** (the drain calls it only after the sink acknowledged).
//! * [`drain`]: forwards the new rows of one blob from its checkpoint. **A blob is read here.**
//! * [`tail`]: finds blobs that grew (append blobs fire no event) and, through [`dispatch`],
//!   asks the queue-triggered function to drain them (or drains them itself).
//! * [`handler`]: the Azure Functions custom handler (`serve`).
//! * [`setup`]: builds these parts from settings, and the one [`drain::Drainer`]
//!   ([`setup::drainer`]); [`config`]: the table of every setting, the settings reader and
//!   every value parser; [`azure`]: storage connections, account SAS and the blob plumbing
//!   ([`azure::blob`]) source, state and dead letters share.
//! * [`cli`]: the command-line entry point (`process`, `gen`, `serve`); the only module (with
//!   `main.rs`) that uses clap.
//! * [`status`], [`redrive`], [`metrics`]: operating the relay: lag per table (read-only),
//!   dead letters sent again, the `drain_summary` log line behind the alerts.

pub mod azure;
pub mod cli;
pub mod config;
pub mod deadletter;
pub mod deliver;
pub mod dispatch;
pub mod drain;
pub mod event;
pub mod gen;
pub mod handler;
pub mod logging;
pub mod loopback;
pub mod metrics;
pub mod normalize;
pub mod pipeline;
pub mod redrive;
pub mod rows;
pub mod setup;
pub mod sink;
pub mod source;
pub mod state;
pub mod status;
pub mod tables;
pub mod tail;
pub mod transform;
