//! The accept loop: hyper's HTTP/1 server with a header-read timeout (which `axum::serve`
//! does not expose), the peer address for every request, and a graceful shutdown bounded by a
//! drain timeout.
//!
//! - `HEADER_READ_TIMEOUT_SECONDS`: a client must send a request's complete head within this,
//!   counted from when the server starts waiting for it; this also closes idle keep-alive
//!   connections after that long, so slow or silent clients cannot hold connections open.
//! - On shutdown the listener closes at once, idle connections close, in-flight requests may
//!   finish for up to `SHUTDOWN_DRAIN_SECONDS`; connections still busy then are closed, so the
//!   process always exits within the pod's grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How the server treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ServerTimeouts {
    /// Longest time to receive a request head (and longest keep-alive idle time).
    pub header_read: Duration,
    /// Longest wait for in-flight requests after the shutdown signal.
    pub drain: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: ServerTimeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, peer, app.clone(), timeouts, stop_rx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set stays the size of the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            drain_seconds = timeouts.drain.as_secs(),
            "draining"
        );
    }
    let drained = tokio::time::timeout(timeouts.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "drain timeout reached; closing the connections still busy"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: ServerTimeouts,
    mut stop: watch::Receiver<bool>,
) {
    let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req.map(Body::new))
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut conn = pin!(conn);
    let mut stopping = false;
    loop {
        if !stopping && *stop.borrow() {
            stopping = true;
            conn.as_mut().graceful_shutdown();
        }
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                if changed.is_err() {
                    // The server is gone: finish gracefully.
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
