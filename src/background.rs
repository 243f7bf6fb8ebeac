//! What shutdown waits for: background work (profile refreshes, the pricing of
//! calls metered by the SDK interceptor) and calls in flight.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// A count of things under way, each held by a [`Counted`], and a way to wait
/// until there are none.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// One more under way, until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Counted {
        self.count.fetch_add(1, Ordering::SeqCst);
        Counted(self.clone())
    }

    /// How many are under way.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits (at most `timeout`) until none is under way. True when none is.
    pub(crate) async fn idle_within(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

/// One place in an [`InFlight`] count, given back when dropped, however that
/// comes about (finished, panicked, or dropped unfinished by its runtime).
#[derive(Debug)]
pub(crate) struct Counted(Arc<InFlight>);

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Counts spawned tasks; once closed, spawns nothing more.
#[derive(Debug, Default)]
pub(crate) struct Background {
    tasks: Arc<InFlight>,
    closed: AtomicBool,
}

impl Background {
    /// Spawns `task` on the current Tokio runtime. False (and nothing spawned) when
    /// there is no runtime or shutdown has begun.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        // Counted before `closed` is read: a `close` that begins in between then
        // waits for this task, or this task sees it closed and is not spawned.
        let counted = self.tasks.enter();
        if self.closed.load(Ordering::SeqCst) {
            return false;
        }
        // The task owns its place: one that panics (a sink, say), or one the
        // runtime drops unfinished, must not keep shutdown waiting.
        handle.spawn(async move {
            let _counted = counted;
            task.await;
        });
        true
    }

    /// Whether shutdown has begun (loops that are not counted stop on it).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Tasks still running.
    pub(crate) fn in_flight(&self) -> usize {
        self.tasks.count()
    }

    /// Stops new spawns and waits (at most `timeout`) for the running ones.
    /// True when none is left.
    pub(crate) async fn close(&self, timeout: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        self.tasks.idle_within(timeout).await
    }
}
