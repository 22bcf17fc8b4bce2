//! The logs of the code under test: shown with a failing test's output,
//! or captured for a test to look at.

use std::sync::{Arc, Mutex};

/// Logs of `mesos_dns` (debug and up, or what `RUST_LOG` says) go to the
/// output of the test that caused them, shown when it fails. Installs the
/// process-wide subscriber, once; it also takes `log` records.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "mesos_dns=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

/// What was logged on this thread while it lives: every target, debug and
/// up, `log` records too. A test on a current-thread runtime sees what
/// the servers and clients it runs log there, and no other test's logs
/// (all tests share one process).
pub struct Captured {
    buf: Arc<Mutex<Vec<u8>>>,
    _scope: tracing::subscriber::DefaultGuard,
}

impl Captured {
    /// The captured text so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

/// Captures what this thread logs from now until the result is dropped.
pub fn capture() -> Captured {
    init(); // forwards `log` records to the subscriber in scope
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || Sink(Arc::clone(&sink)))
        .finish();
    Captured { buf, _scope: tracing::subscriber::set_default(subscriber) }
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
