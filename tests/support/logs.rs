//! Log capture for tests that run in parallel.
//!
//! Thread-local subscribers (`tracing::subscriber::set_default`) race with tracing's
//! global callsite-interest cache when several tests run at once. Instead, one global
//! JSON subscriber captures every event with its thread name (sagemeter's at every
//! level, other crates' at INFO and above), and each test reads back only the INFO and
//! above lines of its own thread: `#[tokio::test]` runs the test's tasks on the test's
//! own thread, which is named after the test. [`everything`] is all of it, every
//! level and thread, for "this never appears anywhere" checks.
//!
//! ```ignore
//! use crate::support::logs;
//! let logs = logs::capture();
//! // ... act ...
//! let lines = logs.lines();            // serde_json::Value per event of this test
//! ```

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// This test's view of the captured logs.
pub struct Logs {
    thread: String,
}

/// Installs the capturing subscriber (once per test binary) and returns this thread's view.
pub fn capture() -> Logs {
    let sink = SINK.get_or_init(|| {
        let sink = Sink::default();
        let writer = sink.clone();
        // sagemeter's own events at every level (what the leak checks read), the
        // other crates' at INFO and above.
        tracing_subscriber::fmt()
            .json()
            .with_thread_names(true)
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,sagemeter=trace"))
            .with_writer(move || writer.clone())
            .init();
        sink
    });
    let _ = sink;
    Logs {
        thread: std::thread::current()
            .name()
            .expect("tests run on named threads")
            .to_owned(),
    }
}

impl Logs {
    /// Every event at INFO and above logged on this test's thread so far.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let raw = SINK.get().unwrap().0.lock().unwrap().clone();
        String::from_utf8_lossy(&raw)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["threadName"] == self.thread.as_str())
            .filter(|v| !matches!(v["level"].as_str(), Some("DEBUG" | "TRACE")))
            .collect()
    }

    /// All of this thread's lines as one text, for "does X appear anywhere" checks.
    pub fn text(&self) -> String {
        self.lines()
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// This thread's events at `level` (e.g. "WARN").
    pub fn at_level(&self, level: &str) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["level"] == level)
            .collect()
    }
}

/// Everything captured so far, every level and every thread (the ledger's and EMF's
/// writer threads too), as one text: for markers that must appear nowhere.
pub fn everything() -> String {
    SINK.get()
        .map(|sink| String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned())
        .unwrap_or_default()
}
