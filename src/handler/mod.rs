//! The Azure Functions custom handler (`mde-relay serve`): an axum server the Functions host
//! starts and calls (platform facts §3).
//!
//! * `GET /`: the host's readiness and liveness ping. Answered from the first moment the port
//!   is open; nothing in this process contacts Azure before an invocation needs it.
//! * `POST /BlobCreated`: queue trigger (or eventGridTrigger) carrying BlobCreated events
//!   ([`events`]). Each event's URL must name the export account and an export container
//!   ([`crate::source::Scoped::admit_url`]); anything else is logged and dropped, never
//!   fetched. Admitted blobs are drained ([`crate::drain`]).
//!   The same queue carries Tail's drain requests ([`crate::dispatch`]): each names an export
//!   blob, drained the same way; one for a blob being drained elsewhere ends at once.
//! * `POST /Tail`: timer trigger; one [`crate::tail`] run, which (by default) puts a drain
//!   request per blob behind on the queue instead of draining.
//!
//! Logs are JSON lines on stdout (the host collects them), each carrying the invocation id of
//! the request it belongs to. The host logs stdout at Information and ignores the body of a
//! non-2xx answer, so every failed invocation (and every other non-2xx answer) also writes one
//! line containing `error` to stderr, which the host logs at Error level ([`report_failure`]).
//! Every 2xx answer is a JSON object with `Content-Type: application/json`: the host leaves an
//! invocation with an empty 2xx body uncompleted until `functionTimeout`.
//!
//! An invocation never waits past its deadline (`RELAY_MAX_DRAIN_TIME` from its start): a blob
//! that gets no drain slot in time is left to Tail with its checkpoint unchanged
//! ([`crate::drain::Outcome::Deferred`]) and the invocation answers.
//!
//! On SIGTERM (or Ctrl-C) the server stops accepting requests, running drains stop at their next
//! checkpoint (everything acknowledged stays checkpointed), in-flight invocations answer, and the
//! process exits: with [`RESTART_EXIT_CODE`] after SIGTERM, so that a host still routing to this
//! worker restarts it (the host does not restart a worker that exits 0), and with 0 after Ctrl-C
//! (a hand-run `serve`). Open connections get at most [`server::SHUTDOWN_GRACE`] to finish;
//! request heads and bodies have their own timeouts ([`server`]).

pub mod events;
pub mod protocol;
pub mod server;

use crate::dispatch::DrainRequests;
use crate::drain::{Contention, Drainer, Outcome};
use crate::setup::RelaySettings;
use crate::tail::TailSettings;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use protocol::{answer, unwrap_value, Invocation, INVOCATION_ID};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{error, info, info_span, warn, Instrument};

/// How long a BlobCreated invocation waits for another drain of the same blob before leaving
/// the blob to it (and to Tail).
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Exit code after SIGTERM: the Functions host's "intentional restart" code. The host restarts
/// a worker that exits non-zero but not one that exits 0 (it would keep routing invocations to a
/// dead port), and unlike other non-zero codes 200 does not count towards the three worker
/// errors in 30 minutes that stop the app (platform facts §3a). A disposing host ignores it.
pub const RESTART_EXIT_CODE: u8 = 200;

/// How `serve` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: the platform (or the host) stops the worker.
    Terminate,
    /// Ctrl-C (SIGINT): someone running `serve` by hand.
    Interrupt,
}

impl Shutdown {
    /// The process exit code for this way of ending: [`RESTART_EXIT_CODE`] after SIGTERM, 0
    /// after Ctrl-C.
    pub fn exit_code(self) -> u8 {
        match self {
            Shutdown::Terminate => RESTART_EXIT_CODE,
            Shutdown::Interrupt => 0,
        }
    }
}

/// What the handler needs to serve invocations.
pub struct App {
    /// The drainer (source, checkpoints, sink, dead letters).
    pub drainer: Arc<Drainer>,
    /// Tail settings.
    pub tail: TailSettings,
    /// Longest an invocation drains.
    pub max_drain_time: Duration,
    /// Where Tail puts drain requests (`RELAY_EVENTS_QUEUE`); `None`: Tail drains itself.
    pub requests: Option<Arc<dyn DrainRequests>>,
}

/// Sets up JSON logging on stdout, filtered by `RUST_LOG` (default `info`), with SAS
/// signatures redacted.
pub fn init_logging() {
    crate::logging::init_json_stdout();
}

/// The router: `GET /`, `POST /BlobCreated`, `POST /Tail`, with a body limit of `max_body`.
pub fn router(app: Arc<App>, max_body: usize) -> Router {
    Router::new()
        // Any answer satisfies the host's readiness ping; JSON like every other 2xx answer.
        .route(
            "/",
            get(|| async { axum::Json(serde_json::json!({"status": "ready"})) }),
        )
        .route("/BlobCreated", post(blob_created))
        .route("/Tail", post(tail))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such function") })
        .layer(DefaultBodyLimit::max(max_body))
        // A body that trickles in is cut off (the head has its own timeout: [`server`]).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            server::BODY_READ_TIMEOUT,
        ))
        // Refuses a body whose Content-Length is over the limit before reading any of it.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        // Outermost: sees the answers of the layers above too (413, 404, 405).
        .layer(axum::middleware::from_fn(report_other_failures))
        .with_state(app)
}

/// Writes the one stderr `error` line for a non-2xx answer that no invocation handler reported
/// (an over-limit body, an unknown function, a wrong method): the host would log nothing else.
async fn report_other_failures(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let what = format!("{} {}", req.method(), req.uri().path());
    let id = invocation_id(req.headers());
    let resp = next.run(req).await;
    if !resp.status().is_success() && resp.extensions().get::<protocol::Reported>().is_none() {
        let why = resp
            .status()
            .canonical_reason()
            .unwrap_or("request refused");
        crate::logging::stderr_error(&format!(
            "error: {what} (invocation {id}) answered {}: {why}",
            resp.status().as_u16()
        ));
    }
    resp
}

/// Reports a failed invocation where operators look: the structured stdout log line and one
/// stderr line containing `error` (which the host logs at Error level), both redacted.
fn report_failure(function: &str, id: &str, reason: &str) {
    error!(error = %reason, "invocation failed");
    crate::logging::stderr_error(&format!(
        "error: {function} invocation {id} failed: {reason}"
    ));
}

fn invocation_id(h: &HeaderMap) -> String {
    h.get(INVOCATION_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

/// Runs one invocation, turning a panic inside it into an error answer: the invocation is
/// answered (and fails, so the host retries it) and the handler goes on serving the others.
/// Everything the invocation held is dropped while unwinding, which releases its leases
/// (the drain's lease guard).
async fn contain_panic(
    work: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let what: String = what.chars().take(300).collect();
            Err(format!(
                "internal error (panic: {}); the invocation's work stops at its last checkpoint",
                crate::logging::redact(&what)
            ))
        }
    }
}

fn parse_body(body: &[u8]) -> Result<Invocation, String> {
    serde_json::from_slice(body).map_err(|e| format!("invocation body is not valid JSON: {e}"))
}

async fn blob_created(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let id = invocation_id(&headers);
    let span = info_span!("invocation", invocation_id = %id, function = "BlobCreated");
    async move {
        let r = contain_panic(handle_blob_created(&app, &body)).await;
        if let Err(e) = &r {
            report_failure("BlobCreated", &id, e);
        }
        answer(r)
    }
    .instrument(span)
    .await
}

async fn handle_blob_created(app: &App, body: &[u8]) -> Result<(), String> {
    let inv = parse_body(body)?;
    let dequeue = inv.meta("DequeueCount");
    let mut evs = Vec::new();
    for (binding, value) in &inv.data {
        match events::parse(value) {
            Ok(mut e) => evs.append(&mut e),
            Err(e) => return Err(format!("binding `{binding}`: {e}")),
        }
    }
    if evs.is_empty() {
        return Err("invocation carries no trigger data".into());
    }
    // `Metadata.Id` is not the queue message id: for a JSON message the host copies the
    // message's own top-level properties into Metadata, and the event's `id` replaces the
    // message `Id` there (platform facts §3a). So only the events' own ids are logged.
    // Bounded: an invocation may carry thousands of events.
    let event_ids: Vec<&str> = evs
        .iter()
        .filter_map(|e| e.id.as_deref())
        .take(MAX_EVENT_LINES)
        .collect();
    info!(
        events = evs.len(),
        event_ids = ?event_ids,
        dequeue_count = ?dequeue,
        "BlobCreated invocation"
    );
    let d = &app.drainer;
    let deadline = Instant::now() + app.max_drain_time;
    let mut failures = Vec::new();
    let mut quiet = Quiet::default();
    for ev in evs {
        if ev.is_drain_request() {
            if let Err(e) = drain_request(d, &ev, deadline, &mut quiet).await {
                failures.push(e);
            }
            continue;
        }
        if !ev.is_blob_created() {
            if quiet.line() {
                info!(event_type = %ev.event_type, event_id = ?ev.id, "ignoring event of another type");
            }
            continue;
        }
        let Some(url) = ev.url.as_deref() else {
            if quiet.line() {
                warn!(event_id = ?ev.id, subject = ?ev.subject, "rejected event: no data.url");
            }
            continue;
        };
        let key = match d.source().admit_url(url) {
            Ok(k) => k,
            Err(why) => {
                // Never fetched: the URL is logged without its query (a SAS could be there).
                let shown = url.split('?').next().unwrap_or("");
                if quiet.line() {
                    warn!(event_id = ?ev.id, url = %shown, reason = %why, "rejected event");
                }
                continue;
            }
        };
        // Anyone who can write to the events queue can name any blob: nothing is written for
        // it (lease, open marker, checkpoint) unless it exists.
        match d.source().properties(&key).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                if quiet.line() {
                    warn!(event_id = ?ev.id, blob = %key, "rejected event: the blob does not exist");
                }
                continue;
            }
            Err(e) => {
                failures.push(crate::logging::redact(&format!("{key}: {e:#}")).into_owned());
                continue;
            }
        }
        match d
            .drain(&key, Contention::Wait(BUSY_WAIT), Some(deadline), None)
            .await
        {
            Ok(r) => {
                if r.outcome == Outcome::Busy {
                    info!(blob = %key, "blob is being drained elsewhere; left to that drain and Tail");
                }
                if matches!(r.outcome, Outcome::Stopped | Outcome::Deferred) && d.stopping() {
                    failures.push(format!("{key}: interrupted by shutdown"));
                }
            }
            Err(e) => failures.push(crate::logging::redact(&format!("{key}: {e:#}")).into_owned()),
        }
    }
    if quiet.suppressed > 0 {
        warn!(
            suppressed = quiet.suppressed,
            "{} more ignored or rejected event(s) not logged one by one (at most {MAX_EVENT_LINES} per invocation)",
            quiet.suppressed
        );
    }
    let n = failures.len();
    if n > MAX_EVENT_LINES {
        failures.truncate(MAX_EVENT_LINES);
        failures.push(format!("{} more", n - MAX_EVENT_LINES));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// One of Tail's drain requests ([`crate::dispatch`]). It names a container and a blob, and
/// is checked like a BlobCreated URL (an export container, a valid name, a blob that exists)
/// before anything is written for it. A blob another instance is draining
/// ([`Outcome::Busy`]) or with nothing new ends at once and successfully: the holder (or the
/// next Tail) forwards what is left; a duplicate request costs one lease check.
async fn drain_request(
    d: &Drainer,
    ev: &events::BlobEvent,
    deadline: Instant,
    quiet: &mut Quiet,
) -> Result<(), String> {
    let Some((container, blob)) = ev.drain.as_ref() else {
        if quiet.line() {
            warn!(event_id = ?ev.id, "rejected drain request: no data.container / data.blob");
        }
        return Ok(());
    };
    let key = match d.source().admit_key(container, blob) {
        Ok(k) => k,
        Err(why) => {
            if quiet.line() {
                warn!(event_id = ?ev.id, reason = %why, "rejected drain request");
            }
            return Ok(());
        }
    };
    match d.source().properties(&key).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            if quiet.line() {
                warn!(event_id = ?ev.id, blob = %key, "rejected drain request: the blob does not exist");
            }
            return Ok(());
        }
        Err(e) => return Err(crate::logging::redact(&format!("{key}: {e:#}")).into_owned()),
    }
    match d.drain(&key, Contention::Skip, Some(deadline), None).await {
        Ok(r) => {
            if quiet.line() {
                info!(blob = %key, outcome = ?r.outcome, "drain request");
            }
            if matches!(r.outcome, Outcome::Stopped | Outcome::Deferred) && d.stopping() {
                return Err(format!("{key}: interrupted by shutdown"));
            }
            Ok(())
        }
        Err(e) => Err(crate::logging::redact(&format!("{key}: {e:#}")).into_owned()),
    }
}

/// Per-event log lines one invocation writes at most; the rest are counted in one line.
const MAX_EVENT_LINES: usize = 20;

/// Counts per-event log lines of one invocation.
#[derive(Default)]
struct Quiet {
    written: usize,
    suppressed: u64,
}

impl Quiet {
    /// True while the invocation may still log one more per-event line.
    fn line(&mut self) -> bool {
        if self.written < MAX_EVENT_LINES {
            self.written += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

async fn tail(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let id = invocation_id(&headers);
    let span = info_span!("invocation", invocation_id = %id, function = "Tail");
    async move {
        let r = contain_panic(async {
            match parse_body(&body) {
                Err(e) => Err(e),
                Ok(inv) => {
                    let past_due = inv
                        .data
                        .values()
                        .map(unwrap_value)
                        .find_map(|v| v.get("IsPastDue").and_then(|p| p.as_bool()));
                    info!(is_past_due = ?past_due, "Tail invocation");
                    let deadline = Instant::now() + app.max_drain_time;
                    let requests = app.requests.as_deref();
                    match crate::tail::run(&app.drainer, &app.tail, Some(deadline), requests).await
                    {
                        Ok(rep) if rep.failed == 0 => Ok(()),
                        Ok(rep) => Err(format!(
                            "{} blob(s) could not be checked or drained",
                            rep.failed
                        )),
                        Err(e) => Err(crate::logging::redact(&format!("{e:#}")).into_owned()),
                    }
                }
            }
        })
        .await;
        if let Err(e) = &r {
            report_failure("Tail", &id, e);
        }
        answer(r)
    }
    .instrument(span)
    .await
}

/// Everything `serve` builds from settings before it listens.
pub struct Prepared {
    /// The app state.
    pub app: Arc<App>,
    /// Largest accepted invocation body.
    pub max_body: usize,
    /// Turns true on shutdown.
    pub stop: watch::Sender<bool>,
}

/// Builds the handler from the environment. Pure configuration: no network.
pub fn prepare() -> anyhow::Result<Prepared> {
    let settings = RelaySettings::from_env()?;
    let (stop, stop_rx) = watch::channel(false);
    let drainer = crate::setup::drainer(
        &settings,
        crate::setup::EXPORT_CONNECTION,
        crate::setup::Stores::Host,
        crate::setup::delivery_from_env()?,
        stop_rx,
    )?;
    let requests: Option<Arc<dyn DrainRequests>> = match settings.tail.mode {
        crate::tail::TailMode::Dispatch => Some(Arc::new(crate::dispatch::QueueRequests::new(
            crate::setup::account(crate::setup::HOST_CONNECTION)?,
            &settings.events_queue,
        ))),
        crate::tail::TailMode::Drain => None,
    };
    Ok(Prepared {
        app: Arc::new(App {
            drainer: Arc::new(drainer),
            tail: settings.tail.clone(),
            max_drain_time: settings.max_drain_time,
            requests,
        }),
        max_body: settings.max_request_bytes,
        stop,
    })
}

/// Resolves on SIGTERM or Ctrl-C, saying which.
async fn shutdown_signal() -> Shutdown {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => Shutdown::Interrupt,
        _ = term => Shutdown::Terminate,
    }
}

/// Serves on 127.0.0.1:`port` until SIGTERM or Ctrl-C, and says which ended it (the caller
/// exits with [`Shutdown::exit_code`]).
pub async fn serve(port: u16, prepared: Prepared) -> anyhow::Result<Shutdown> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let Prepared {
        app,
        max_body,
        stop,
    } = prepared;
    let drainer = app.drainer.clone();
    info!(
        port = listener.local_addr().map(|a| a.port()).unwrap_or(port),
        source = %drainer.source().describe(),
        sink = drainer.sink().name(),
        version = env!("CARGO_PKG_VERSION"),
        "mde-relay handler listening"
    );
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        let how = shutdown_signal().await;
        info!(signal = ?how, "shutdown requested: no new work; running drains stop at their next checkpoint");
        let _ = stop.send(true);
        let _ = ended_tx.send(how);
    };
    server::run(listener, router(app, max_body), shutdown).await;
    if let Err(e) = drainer.sink().finish().await {
        error!(error = %e, "sink did not flush on shutdown");
    }
    let how = ended_rx.await.unwrap_or(Shutdown::Terminate);
    info!(exit_code = how.exit_code(), "mde-relay handler stopped");
    Ok(how)
}
