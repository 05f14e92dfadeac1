//! The accept loop of `weir serve`: HTTP/1.1 connections served by hyper, each on a clock
//! (see [`connection`](super::connection)) and under a cap on open connections.
//!
//! - A request's header must arrive within the header timeout (a new connection's first
//!   one, or any later one from its first byte), and a connection may idle between
//!   requests up to the idle timeout; past either, it is closed. Serving has no limit here
//!   (attempts have their own, and event streams are meant to last).
//! - At most `max_connections` are open. At the cap, the connection that waited longest
//!   for a request is closed to make room (any client of a keep-alive pool expects that);
//!   when every one is busy, the new connection waits until one closes, and the ones after
//!   it wait in the kernel's backlog. The process thus stays within its descriptors while
//!   probes still get answers.
//! - The listener stays open through a shutdown's drain, so probes hear `/readyz` answer
//!   503 and requests in flight (waits, event streams) are served until the drain is over;
//!   then it stops accepting and closes every connection gracefully (a request in flight
//!   gets its answer).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Router;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::connection::{Clock, Timeouts, Watched};

/// How long open connections get to finish their answers once the listener closes; after
/// it they are dropped (an event stream ends itself at once, so only a slow client waits).
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The pause after a failed accept (out of descriptors, say) before the next try, so the
/// loop does not spin while the cause lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At the connection cap with no connection waiting for a request, how often to look again
/// for one to close (one may have finished its answer meanwhile).
const EVICT_RETRY: Duration = Duration::from_millis(100);

/// What the listener allows its connections.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnectionLimits {
    /// Header-read and idle timeouts.
    pub timeouts: Timeouts,
    /// Connections open at once.
    pub max_connections: usize,
}

/// The clocks of the open connections, to find one to close at the cap.
#[derive(Default)]
struct Open {
    clocks: Mutex<HashMap<u64, Weak<Clock>>>,
}

impl Open {
    fn insert(&self, id: u64, clock: &Arc<Clock>) {
        self.lock().insert(id, Arc::downgrade(clock));
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<Clock>>> {
        self.clocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the connection that has waited longest for a request, if any is waiting.
    fn evict_longest_waiting(&self) {
        let oldest = self
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .filter_map(|clock| clock.waiting_since().map(|since| (since, clock)))
            .min_by_key(|(since, _)| *since);
        if let Some((_, clock)) = oldest
            && clock.evict()
        {
            tracing::debug!("at the connection cap: closed the connection idle the longest");
        }
    }
}

/// Serves `router` on `listener` until `closing` turns true, then closes gracefully.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = Arc::new(Open::default());
    let mut next_id = 0u64;
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
        let Some(place) = make_room(&places, &open, &mut closing).await else {
            break;
        };
        // Small writes (event-stream lines) go out at once.
        let _ = stream.set_nodelay(true);
        let clock = Clock::start(limits.timeouts);
        let id = next_id;
        next_id += 1;
        open.insert(id, &clock);
        let io = TokioIo::new(Watched::new(stream, clock.clone()));
        // The clock hears when each request is being served: from its header until its
        // answer's body is done (or dropped).
        let service = {
            let (inner, clock) = (TowerToHyperService::new(router.clone()), clock.clone());
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let serving = clock.serving();
                let answer = hyper::service::Service::call(&inner, request);
                async move {
                    let response = answer.await?;
                    Ok::<_, Infallible>(response.map(|body| {
                        body.map_frame(move |frame| {
                            // The body owns the guard: the idle clock starts when it drops.
                            let _serving = &serving;
                            frame
                        })
                    }))
                }
            })
        };
        let connection = http1::Builder::new().serve_connection(io, service);
        let connection = graceful.watch(connection);
        let open = open.clone();
        tokio::spawn(async move {
            let _place = place;
            tokio::select! {
                ended = connection => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                why = clock.expired() => {
                    tracing::debug!(%peer, ?why, "closing a connection");
                }
            }
            open.remove(id);
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

/// A place for one more connection: at once under the cap; at the cap, by closing the
/// connection that waited longest for a request, or once one closes. `None` when the
/// listener closes meanwhile.
async fn make_room(
    places: &Arc<Semaphore>,
    open: &Open,
    closing: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    loop {
        if let Ok(place) = places.clone().try_acquire_owned() {
            return Some(place);
        }
        open.evict_longest_waiting();
        tokio::select! {
            place = places.clone().acquire_owned() => return place.ok(),
            () = tokio::time::sleep(EVICT_RETRY) => {}
            _ = closing.wait_for(|closing| *closing) => return None,
        }
    }
}
