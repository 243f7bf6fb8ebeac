//! A recorder of sagemeter's `sagemaker.invoke` spans and `sagemeter` events, for
//! tests that check what a call's span closes with (its outcome and cost) and
//! which span a cost line was logged in.
//!
//! ```ignore
//! let (logs, _guard) = crate::support::spans::capture();
//! // ... act ...
//! let spans = logs.closed_spans(); // the fields each span closed with
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span's or an event's fields, by name (an event's `@span`: the name of the
/// span it was logged in, if any).
pub type Fields = BTreeMap<String, String>;

/// The recorder (a [`Layer`]): clones share what it recorded.
#[derive(Clone, Default)]
pub struct Captured {
    events: Arc<Mutex<Vec<Fields>>>,
    open_spans: Arc<Mutex<HashMap<u64, Fields>>>,
    closed_spans: Arc<Mutex<Vec<Fields>>>,
}

/// Records into a fresh [`Captured`] on this thread until the guard is dropped.
pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    // The binary's global subscriber first (it wants sagemeter's events): a
    // callsite first met on a thread with no subscriber is otherwise cached as
    // of no interest, racing this thread's registration, and its events lost.
    let _ = crate::support::logs::capture();
    let logs = Captured::default();
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(logs.clone()));
    (logs, guard)
}

struct FieldsVisitor<'a>(&'a mut Fields);

impl Visit for FieldsVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    // A double is kept with its type, so that a test can tell it from text.
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0
            .insert(field.name().to_owned(), format!("f64:{value}"));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() == "sagemeter" {
            let mut fields = Fields::new();
            event.record(&mut FieldsVisitor(&mut fields));
            if let Some(span) = ctx.event_span(event) {
                fields.insert("@span".to_owned(), span.name().to_owned());
            }
            self.events.lock().unwrap().push(fields);
        }
    }
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "sagemaker.invoke" {
            let mut fields = Fields::new();
            attrs.record(&mut FieldsVisitor(&mut fields));
            self.open_spans
                .lock()
                .unwrap()
                .insert(id.into_u64(), fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = self.open_spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut FieldsVisitor(fields));
        }
    }
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(fields) = self.open_spans.lock().unwrap().remove(&id.into_u64()) {
            self.closed_spans.lock().unwrap().push(fields);
        }
    }
}

impl Captured {
    /// The cost log lines ("sagemaker call cost").
    pub fn cost_lines(&self) -> Vec<Fields> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.get("message").is_some_and(|m| m == "sagemaker call cost"))
            .cloned()
            .collect()
    }

    /// The fields each `sagemaker.invoke` span closed with, in the order they closed.
    pub fn closed_spans(&self) -> Vec<Fields> {
        self.closed_spans.lock().unwrap().clone()
    }
}
