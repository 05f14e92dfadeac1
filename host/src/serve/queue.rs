//! Backpressure: a bounded run queue in front of a fixed pool of workers. A submission is
//! admitted only while fewer than `workers + queue` runs are admitted and unfinished;
//! otherwise the API answers 429 with `Retry-After` and creates nothing.
//!
//! In a fleet, runs taken over from a host that died go in a lane of their own that every
//! worker empties first: they were submitted before anything in this host's queue, and have
//! waited a lease already.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::metrics;
use crate::runner::Runner;
use crate::store::Lease;

/// A place in the queue, taken before a run is created.
pub struct Admission(
    #[expect(dead_code, reason = "held, not read: dropping it frees the place")]
    OwnedSemaphorePermit,
);

struct Ticket {
    run_id: String,
    /// Set when the run was claimed before it was queued (taken over from another host).
    lease: Option<Lease>,
    /// Taken over from a host that let it go: in the first lane, with no place in the queue.
    orphan: bool,
    _admission: Option<Admission>,
}

/// What the workers take runs from: the orphans' lane first, then the queue.
struct Lanes {
    orphans: mpsc::UnboundedReceiver<Ticket>,
    tickets: mpsc::UnboundedReceiver<Ticket>,
}

/// The run queue.
#[derive(Clone)]
pub struct Queue {
    permits: Arc<Semaphore>,
    tickets: mpsc::UnboundedSender<Ticket>,
    orphans: mpsc::UnboundedSender<Ticket>,
    waiting: Arc<AtomicUsize>,
    orphans_waiting: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    workers: usize,
}

impl Queue {
    /// Starts `workers` workers driving runs with `runner`, with room for `queue` waiting
    /// runs. The workers stop taking runs when `stop` turns true, and return once the run
    /// they drive returns (the runner drains it).
    pub fn start(
        runner: Runner,
        workers: usize,
        queue: usize,
        stop: watch::Receiver<bool>,
    ) -> (Self, JoinSet<()>) {
        let (tickets, queued) = mpsc::unbounded_channel();
        let (orphans, taken_over) = mpsc::unbounded_channel();
        let this = Self {
            permits: Arc::new(Semaphore::new(workers + queue)),
            tickets,
            orphans,
            waiting: Arc::default(),
            orphans_waiting: Arc::default(),
            active: Arc::default(),
            workers: workers.max(1),
        };
        let receiver = Arc::new(Mutex::new(Lanes {
            orphans: taken_over,
            tickets: queued,
        }));
        let mut pool = JoinSet::new();
        for _ in 0..workers.max(1) {
            pool.spawn(
                this.clone()
                    .work(runner.clone(), receiver.clone(), stop.clone()),
            );
        }
        (this, pool)
    }

    /// A place for one more run, or `None` when the queue is full.
    pub fn try_admit(&self) -> Option<Admission> {
        self.permits.clone().try_acquire_owned().ok().map(Admission)
    }

    /// Waits for a place (for runs resumed at start, which must not be refused).
    pub async fn admit(&self) -> Option<Admission> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .ok()
            .map(Admission)
    }

    /// Queues an admitted run.
    pub fn enqueue(&self, admission: Admission, run_id: String) {
        self.send(admission, run_id, None);
    }

    /// Queues an admitted run this host already holds a lease on.
    pub fn enqueue_leased(&self, admission: Admission, lease: Lease) {
        self.send(admission, lease.run_id.clone(), Some(lease));
    }

    /// Queues a run taken over from a host that let it go, ahead of every queued run and
    /// outside the queue's bound (the claims that make these are bounded instead).
    pub fn enqueue_orphan(&self, lease: Lease) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.orphans_waiting.fetch_add(1, Ordering::SeqCst);
        self.report();
        let _ = self.orphans.send(Ticket {
            run_id: lease.run_id.clone(),
            lease: Some(lease),
            orphan: true,
            _admission: None,
        });
    }

    fn send(&self, admission: Admission, run_id: String, lease: Option<Lease>) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.report();
        let _ = self.tickets.send(Ticket {
            run_id,
            lease,
            orphan: false,
            _admission: Some(admission),
        });
    }

    /// Runs taken over and waiting for a worker.
    pub fn orphans_waiting(&self) -> usize {
        self.orphans_waiting.load(Ordering::SeqCst)
    }

    /// How many runs this host drives at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Workers with nothing to do: how many runs this host can start at once.
    pub fn idle_workers(&self) -> usize {
        self.workers
            .saturating_sub(self.active.load(Ordering::SeqCst) + self.waiting())
    }

    /// Runs waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    fn report(&self) {
        metrics::queue(self.waiting(), self.active.load(Ordering::SeqCst));
    }

    async fn work(
        self,
        runner: Runner,
        receiver: Arc<Mutex<Lanes>>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let ticket = {
                let mut lanes = receiver.lock().await;
                let Lanes { orphans, tickets } = &mut *lanes;
                tokio::select! {
                    biased;
                    Some(ticket) = orphans.recv() => Some(ticket),
                    ticket = tickets.recv() => ticket,
                    _ = stop.changed() => None,
                }
            };
            let Some(ticket) = ticket else { return };
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if ticket.orphan {
                self.orphans_waiting.fetch_sub(1, Ordering::SeqCst);
            }
            if runner.draining() {
                // Left `pending`: the next start resumes it.
                return;
            }
            self.active.fetch_add(1, Ordering::SeqCst);
            self.report();
            let driven = match ticket.lease {
                Some(lease) => runner.execute_leased(lease).await,
                None => runner.execute(&ticket.run_id).await,
            };
            if let Err(e) = driven {
                if e.downcast_ref::<crate::runner::Busy>().is_some() {
                    tracing::debug!(run_id = %ticket.run_id, "run is driven elsewhere");
                } else {
                    tracing::error!(run_id = %ticket.run_id, error = %format!("{e:#}"), "run could not be driven");
                }
            }
            self.active.fetch_sub(1, Ordering::SeqCst);
            self.report();
        }
    }
}
