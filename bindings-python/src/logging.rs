//! The library's `tracing` events, forwarded to Python's `logging` under
//! the logger `lupa_core` (`lupa_core::cache` becomes `lupa_core.cache`).
//!
//! Every message goes through the core's redaction (passwords in URLs, API
//! keys) before it reaches Python. Events of the libraries underneath (sqlx,
//! redis) are forwarded from `WARN` up, under `lupa_core.deps.*`.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

struct PyLogging;

fn ours(target: &str) -> bool {
    target == "lupa_core" || target.starts_with("lupa_core::")
}

fn wanted(meta: &Metadata<'_>) -> bool {
    // Levels grow more verbose: TRACE > DEBUG > INFO > WARN > ERROR.
    ours(meta.target()) || *meta.level() <= Level::WARN
}

#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

static LOGGING: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn python_level(level: Level) -> u8 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

impl<S: Subscriber> Layer<S> for PyLogging {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if wanted(meta) { Interest::sometimes() } else { Interest::never() }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        wanted(meta)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let target = meta.target();
        let name = if ours(target) {
            target.replace("::", ".")
        } else {
            format!("lupa_core.deps.{}", target.replace("::", "."))
        };
        let level = python_level(*meta.level());
        let mut message = Message::default();
        event.record(&mut message);
        let text = lupa_core::redact_text(&format!("{}{}", message.text, message.fields));
        // Never during interpreter shutdown; a failing handler is Python's
        // business, not a reason to disturb the call that logged.
        crate::runtime::into_python(|| {
            Python::try_attach(|py| -> PyResult<()> {
                let logging = LOGGING.get_or_try_init(py, || py.import("logging").map(Bound::unbind))?.bind(py);
                let logger = logging.call_method1("getLogger", (name,))?;
                if logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                    logger.call_method1("log", (level, "%s", text))?;
                }
                Ok(())
            })
        });
    }
}

/// Installs the forwarding for this module's copy of `tracing` (each
/// extension module has its own, so this cannot clash with another's).
pub fn install() {
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PyLogging));
}
