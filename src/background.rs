//! Background work that shutdown must wait for: profile refreshes and the pricing
//! of calls metered by the SDK interceptor.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Counts spawned tasks; once closed, spawns nothing more.
#[derive(Debug, Default)]
pub(crate) struct Background {
    in_flight: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

impl Background {
    /// Spawns `task` on the current Tokio runtime. False (and nothing spawned) when
    /// there is no runtime or shutdown has begun.
    pub(crate) fn spawn(
        self: &std::sync::Arc<Self>,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        // Counted before `closed` is read: a `close` that begins in between then
        // waits for this task, or this task sees it closed and is not spawned.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.idle.notify_waiters();
            }
            return false;
        }
        // Counted down by a guard the task owns: a task that panics (a sink, say),
        // or one the runtime drops unfinished, must not keep shutdown waiting.
        let done = Done(self.clone());
        handle.spawn(async move {
            let _done = done;
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
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Stops new spawns and waits (at most `timeout`) for the running ones.
    /// True when none is left.
    pub(crate) async fn close(&self, timeout: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

/// One spawned task's place in [`Background::in_flight`], given back when the task
/// ends however it ends (finished, panicked, or dropped by its runtime).
struct Done(std::sync::Arc<Background>);

impl Drop for Done {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
