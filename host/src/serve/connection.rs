//! One connection's clock, for the header-read and idle timeouts. A connection is waiting
//! for a request (new, or idle between requests), reading one (its first bytes are in, its
//! header is not complete), or serving one (body and answer, however long they take: a
//! run's event stream may last minutes). Waiting and reading have deadlines; the
//! connection's task closes the socket when one passes, or when the listener evicts a
//! waiting connection to make room under the connection cap.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a connection may take over each part of its life.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From a new connection, or from the first byte of a later request, to the end of the
    /// request's header.
    pub header: Duration,
    /// Between the end of an answer and the first byte of the next request.
    pub idle: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request yet (a new connection), or idle since an answer ended.
    Waiting {
        since: Instant,
        deadline: Instant,
        /// Nothing was ever read: the first header is due.
        fresh: bool,
    },
    /// A request's first bytes are in; its header is not complete.
    Reading { deadline: Instant },
    /// A request is being served.
    Serving,
    /// Asked to close to make room under the connection cap.
    Evicted,
}

/// Why a connection's task closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// A request's header did not arrive in time.
    Header,
    /// Idle for longer than the idle timeout.
    Idle,
    /// Closed to make room for a new connection.
    Evicted,
}

/// A connection's phase, shared by its socket, its service and its task.
pub struct Clock {
    phase: Mutex<Phase>,
    /// Woken on every change of phase; one waiter (the connection's task), and a change
    /// made while it is not waiting leaves a permit, so none is missed.
    changed: Notify,
    timeouts: Timeouts,
}

impl Clock {
    /// A new connection's clock: its first header is due within the header timeout.
    pub fn start(timeouts: Timeouts) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            phase: Mutex::new(Phase::Waiting {
                since: now,
                deadline: now + timeouts.header,
                fresh: true,
            }),
            changed: Notify::new(),
            timeouts,
        })
    }

    fn phase(&self) -> Phase {
        *self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the phase with `change` (which says whether it changed anything).
    fn update(&self, change: impl FnOnce(&mut Phase) -> bool) -> bool {
        let changed = change(
            &mut self
                .phase
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if changed {
            self.changed.notify_one();
        }
        changed
    }

    /// Bytes arrived: a waiting connection starts reading a request.
    fn bytes_in(&self) {
        let header = self.timeouts.header;
        self.update(|phase| match *phase {
            Phase::Waiting { .. } => {
                *phase = Phase::Reading {
                    deadline: Instant::now() + header,
                };
                true
            }
            _ => false,
        });
    }

    /// A request's header is in and it is being served, until the guard drops (its
    /// answer has been written or abandoned).
    pub fn serving(self: &Arc<Self>) -> Serving {
        self.update(|phase| {
            *phase = Phase::Serving;
            true
        });
        Serving(self.clone())
    }

    /// Since when the connection has waited for a request, if it is waiting.
    pub fn waiting_since(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Waiting { since, .. } => Some(since),
            _ => None,
        }
    }

    /// Closes the connection if it is waiting for a request; whether it was.
    pub fn evict(&self) -> bool {
        self.update(|phase| match *phase {
            Phase::Waiting { .. } => {
                *phase = Phase::Evicted;
                true
            }
            _ => false,
        })
    }

    /// Resolves once the connection has outlived the deadline of its phase, or is evicted.
    pub async fn expired(&self) -> Expired {
        loop {
            let changed = self.changed.notified();
            let (deadline, why) = match self.phase() {
                // A new connection that has sent nothing is held to the header timeout.
                Phase::Waiting {
                    deadline,
                    fresh: true,
                    ..
                } => (deadline, Expired::Header),
                Phase::Waiting { deadline, .. } => (deadline, Expired::Idle),
                Phase::Reading { deadline } => (deadline, Expired::Header),
                Phase::Serving => {
                    changed.await;
                    continue;
                }
                Phase::Evicted => return Expired::Evicted,
            };
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return why,
                () = changed => {}
            }
        }
    }
}

/// Held while a request is served; dropping it starts the idle clock.
pub struct Serving(Arc<Clock>);

impl Drop for Serving {
    fn drop(&mut self) {
        let idle = self.0.timeouts.idle;
        self.0.update(|phase| {
            let now = Instant::now();
            *phase = Phase::Waiting {
                since: now,
                deadline: now + idle,
                fresh: false,
            };
            true
        });
    }
}

/// A socket that tells its clock when bytes arrive.
pub struct Watched<T> {
    inner: T,
    clock: Arc<Clock>,
}

impl<T> Watched<T> {
    /// Watches `inner` for `clock`.
    pub fn new(inner: T, clock: Arc<Clock>) -> Self {
        Self { inner, clock }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_in();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
