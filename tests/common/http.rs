//! The loopback HTTP receiver every test and bench that needs one starts (tests use it as
//! `common::http`, benches include this file with `#[path]`): an axum app on `127.0.0.1:0`.
#![allow(dead_code)]

use std::net::SocketAddr;

/// Serves `app` on 127.0.0.1:0 on the current Tokio runtime; returns its address.
pub async fn spawn(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Serves `app` on 127.0.0.1:0 on a thread (and runtime) of its own, for callers that block
/// or build their own runtimes; returns the base URL (`http://127.0.0.1:PORT/`).
pub fn serve(app: axum::Router) -> url::Url {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    url::Url::parse(&format!("http://{addr}/")).unwrap()
}
