//! Accepting connections and serving HTTP/1.1 on them: what `axum::serve` does, set up for a
//! server whose connections are mostly long-lived, idle event streams.
//!
//! Compared with `axum::serve`: one connection builder for all connections instead of one per
//! connection; HTTP/1.1 only (`axum::serve` also detects HTTP/2 with prior knowledge, which
//! browsers never use on plain `http://`, and its version detection and HTTP/2 state sized every
//! connection's task); `TCP_NODELAY`, so an event written alone leaves at once instead of waiting
//! for the previous one's ACK (Nagle's algorithm with delayed ACKs holds it up to 40 ms).

use std::{future::Future, io, pin::pin, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper::server::conn::http1;
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown, service::TowerToHyperService};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish its request in flight and closes it.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut builder = http1::Builder::new();
    // Hyper's default, stated: each response is written with vectored writes of the event
    // buffers as they are (no copy into one buffer).
    builder.writev(true);
    let connections = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {error}");
        }
        // Each request carries the address it came from, for the limits per client; added to
        // the request rather than by a layer on the router, which would copy the router's
        // routes for every connection.
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let connection = connections.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!("connection ended with an error: {error}");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// A connection that failed before it was accepted concerns only its client; running out of
/// file descriptors concerns every client, and retrying at once would spin.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(
        "cannot accept a connection: {error}; if it says too many open files, raise the limit \
         (ulimit -n) for pipescope"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
}
