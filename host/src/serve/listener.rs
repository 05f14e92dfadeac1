//! The accept loop of `weir serve`: HTTP/1.1 connections served by hyper. The listener stays
//! open through a shutdown's drain, so probes hear `/readyz` answer 503 and requests in
//! flight (waits, event streams) are served until the drain is over; then it stops
//! accepting and closes every connection gracefully (a request in flight gets its answer).

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long open connections get to finish their answers once the listener closes; after
/// it they are dropped (an event stream ends itself at once, so only a slow client waits).
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The pause after a failed accept (out of descriptors, say) before the next try, so the
/// loop does not spin while the cause lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `closing` turns true, then closes gracefully.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    mut closing: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = closing.wait_for(|closing| *closing) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Small writes (event-stream lines) go out at once.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(CLOSE_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {CLOSE_GRACE:?} after closing; dropping them");
    }
}
