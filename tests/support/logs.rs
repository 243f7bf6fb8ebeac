//! Log capture for tests that run in parallel.
//!
//! Thread-local subscribers (`tracing::subscriber::set_default`) race with tracing's
//! global callsite-interest cache when several tests run at once. Instead, one global
//! JSON subscriber (INFO and above) captures every event with its thread name, and each
//! test reads back only the lines of its own thread: `#[tokio::test]` runs the test's
//! tasks on the test's own thread, which is named after the test.
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
        tracing_subscriber::fmt()
            .json()
            .with_thread_names(true)
            .with_max_level(tracing::Level::INFO)
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
    /// Every event logged on this test's thread so far.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let raw = SINK.get().unwrap().0.lock().unwrap().clone();
        String::from_utf8_lossy(&raw)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["threadName"] == self.thread.as_str())
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
