//! All integration tests run as threads of one process. Most share the
//! machine well, but a test that loads it (floods, thousands of queries,
//! long CPU-bound property runs) could make a test that measures time
//! (a failover within seconds, a refresh within a period) fail. Such tests
//! hold a pass: a [`load`] pass while no other pass is out, [`timing`]
//! passes alongside each other but never alongside a load pass. Tests that
//! hold neither run any time.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

struct Passes {
    timing: usize,
    load: bool,
    /// Load tests waiting: new timing passes wait behind them.
    load_waiting: usize,
}

static PASSES: Mutex<Passes> = Mutex::new(Passes { timing: 0, load: false, load_waiting: 0 });
static CHANGED: Condvar = Condvar::new();

fn passes() -> MutexGuard<'static, Passes> {
    PASSES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait(p: MutexGuard<'static, Passes>) -> MutexGuard<'static, Passes> {
    CHANGED.wait(p).unwrap_or_else(PoisonError::into_inner)
}

/// Held for as long as the test runs (returned on drop, also when it
/// fails).
#[must_use = "the pass is returned when dropped"]
pub struct Pass {
    load: bool,
}

/// For a test that loads the machine: waits until no other test holds a
/// pass.
pub fn load() -> Pass {
    let mut p = passes();
    p.load_waiting += 1;
    while p.load || p.timing > 0 {
        p = wait(p);
    }
    p.load_waiting -= 1;
    p.load = true;
    Pass { load: true }
}

/// For a test whose assertions are about time: waits while a load test
/// runs (or waits to).
pub fn timing() -> Pass {
    let mut p = passes();
    while p.load || p.load_waiting > 0 {
        p = wait(p);
    }
    p.timing += 1;
    Pass { load: false }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut p = passes();
        if self.load {
            p.load = false;
        } else {
            p.timing -= 1;
        }
        CHANGED.notify_all();
    }
}
