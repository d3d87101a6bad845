//! The handler's HTTP server: axum's router behind an accept loop of its own, because
//! `axum::serve` sets no timer on its connections, so a client that never finishes its request
//! head (slowloris) holds a connection, and a task, for ever, and graceful shutdown waits for it.
//!
//! * [`HEADER_READ_TIMEOUT`]: a connection must deliver a whole request head within this long of
//!   starting to wait for one. hyper starts the wait on an idle keep-alive connection too, so this
//!   is also the idle timeout between requests.
//! * [`BODY_READ_TIMEOUT`]: the body of a request must arrive within this long (applied in the
//!   router, [`super::router`]).
//! * [`SHUTDOWN_GRACE`]: after the shutdown signal no connection is accepted; open connections
//!   finish their in-flight request (the drains behind them stop at their next checkpoint) and
//!   close. Whatever is still open after the grace is dropped: an invocation then gets no answer,
//!   its work is checkpointed up to its last acknowledged batch, and the rest is sent again
//!   (same ids) by the next drain.
//!
//! All three are documented in `docs/handler.md`.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Longest wait for a request head (and, on a keep-alive connection, for the next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for a request body once its head arrived.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait, after the shutdown signal, for open connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then for at most [`SHUTDOWN_GRACE`].
pub async fn run(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let (close_tx, close_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let app = app.clone();
                    let close = close_rx.clone();
                    conns.spawn(connection(stream, app, close));
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = close_tx.send(true);
    let open = conns.len();
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        warn!(
            open = conns.len(),
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "connections still open after the shutdown grace; closing them"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    } else if open > 0 {
        info!(connections = open, "open connections finished");
    }
}

async fn connection(stream: tokio::net::TcpStream, app: Router, mut close: watch::Receiver<bool>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(error = %e, "connection ended");
                }
                return;
            }
            _ = close.wait_for(|c| *c), if !closing => {
                // Finishes the request in flight, then closes; an idle connection closes now.
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}
