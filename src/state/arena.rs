//! The task arena: a state document and the tasks parsed from it, kept
//! together, and the parser that fills it. It holds the state's one
//! `unsafe` block, a lifetime extension, which nothing outside this file
//! sees.
//!
//! A task's strings borrow from the document, which lives in the same
//! [`TaskSlots`] as the tasks, so the tasks are stored as `Task<'static>`:
//! Rust has no name for "borrowing from a sibling field". That is sound
//! because of an invariant this file keeps, and that its private fields
//! keep anyone else from breaking:
//! - the document's buffer never moves or changes while tasks borrow from
//!   it: it is set when the slots are made and never written after (no
//!   `&mut` reaches the contents of their `Arc` while it is shared);
//! - the document is dropped after the tasks (`body` is declared after
//!   `slots`, and fields drop in declaration order);
//! - a `Task<'static>` never leaves this file: readers get each task as
//!   borrowing the slots ([`TaskSlots::task`]), so nothing they keep can
//!   outlive the document.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use super::lenient::Obj;
use super::{Task, TaskError};

/// How far ahead a reader that caught up with
/// [`State::from_vec`](super::State::from_vec)'s parser lets it get before
/// reading on.
const CATCH_UP_TASKS: usize = 512;

/// Every task of a state, filled in document order by one [`TaskParser`],
/// and the document they borrow their strings from.
#[derive(Default)]
pub(super) struct TaskSlots {
    /// The tasks, their lifetime erased: they borrow from `body`, declared
    /// after them so that it is dropped after them, and are only handed
    /// out as borrowing the slots ([`borrowing_slots`]).
    slots: Vec<OnceLock<Option<Task<'static>>>>,
    /// The tasks of a state made from the event stream's cluster model,
    /// shared with it (and owning their strings); `slots` is then empty.
    shared: Vec<Arc<Task<'static>>>,
    /// The first task that could not be read.
    error: OnceLock<String>,
    /// The state document; never changed once the slots are shared.
    body: Vec<u8>,
}

impl TaskSlots {
    /// Slots for `count` tasks, none parsed yet, and the document they
    /// will borrow from.
    pub(super) fn new(count: usize, body: Vec<u8>) -> Self {
        TaskSlots {
            slots: (0..count).map(|_| OnceLock::new()).collect(),
            shared: Vec::new(),
            error: OnceLock::new(),
            body,
        }
    }

    /// Slots holding tasks that own their strings, shared with whoever
    /// made them.
    pub(super) fn shared(tasks: Vec<Arc<Task<'static>>>) -> Self {
        TaskSlots { shared: tasks, ..TaskSlots::default() }
    }

    /// Task `i`, once parsed; `None` if it is not an object, could not be
    /// read, or is past the end. Waits for it.
    pub(super) fn task(&self, i: usize) -> Option<&Task<'_>> {
        if !self.shared.is_empty() {
            return self.shared.get(i).map(|task| borrowing_slots(task));
        }
        let all = &self.slots;
        let slot = all.get(i)?;
        if slot.get().is_none() {
            // Caught up with the parser: wait until it is a stretch
            // ahead (slots fill in order), not for every next task,
            // as each wake-up costs more than parsing a task.
            all.get(i + CATCH_UP_TASKS).or(all.last()).map(OnceLock::wait);
        }
        slot.wait().as_ref().map(borrowing_slots)
    }

    /// Wait until every task is parsed; an error if one could not be read
    /// (it was left out of its framework's tasks).
    pub(super) fn parsed(&self) -> Result<(), TaskError> {
        if let Some(last) = self.slots.last() {
            last.wait();
        }
        match self.error.get() {
            Some(e) => Err(TaskError(e.clone())),
            None => Ok(()),
        }
    }
}

/// A task of the slots, as borrowing them (and so their `body`).
fn borrowing_slots<'s>(task: &'s Task<'static>) -> &'s Task<'s> {
    task
}

impl fmt::Debug for TaskSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} task slots", self.slots.len())
    }
}

/// Parses task objects into their slots, in order. Whatever it has not
/// filled when dropped (it stopped early, or never ran) is filled as
/// missing, with an error, so no reader waits forever.
pub(super) struct TaskParser {
    tasks: Arc<TaskSlots>,
    next: usize,
}

impl TaskParser {
    pub(super) fn new(tasks: &Arc<TaskSlots>) -> Self {
        TaskParser { tasks: Arc::clone(tasks), next: 0 }
    }

    /// Parse the task at each of `spans` of the document.
    pub(super) fn run(mut self, spans: &[Range<usize>]) {
        let started = std::time::Instant::now();
        let body = &self.tasks.body;
        // SAFETY: the tasks parsed here borrow from `body` and are stored
        // in the same `TaskSlots`, which owns the document: a `Vec` whose
        // buffer never moves and is never written once shared (there is
        // no `&mut` to an `Arc`'s contents while it is shared), and which
        // is dropped after the slots. Readers get the tasks only for as
        // long as they borrow the slots (`TaskSlots::task`, the only way
        // out of this file's private fields).
        let body: &'static [u8] = unsafe { std::slice::from_raw_parts(body.as_ptr(), body.len()) };
        // A document that is UTF-8 throughout (the usual case) is checked
        // once here, and each task read as text: serde then does not check
        // each string again. Otherwise each task is read as bytes, and
        // fails only where bytes that are not UTF-8 sit in a string read.
        let text = std::str::from_utf8(body).ok();
        for (i, span) in spans.iter().enumerate() {
            // Nobody left to read them (the refresh failed meanwhile).
            if i % 256 == 0 && Arc::strong_count(&self.tasks) == 1 {
                return;
            }
            let parsed = match text {
                Some(text) => text.get(span.clone()).map(serde_json::from_str::<Obj<Task>>),
                None => body.get(span.clone()).map(serde_json::from_slice::<Obj<Task>>),
            };
            let task = match parsed {
                Some(Ok(Obj(task))) => task,
                Some(Err(e)) => {
                    let _ = self.tasks.error.set(e.to_string());
                    None
                }
                None => None,
            };
            if let Some(slot) = self.tasks.slots.get(self.next) {
                let _ = slot.set(task);
            }
            self.next += 1;
        }
        tracing::debug!(
            tasks = spans.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "tasks parsed"
        );
    }
}

impl Drop for TaskParser {
    fn drop(&mut self) {
        let rest = self.tasks.slots.get(self.next..).unwrap_or_default();
        if !rest.is_empty() {
            let _ = self.tasks.error.set("the task parser stopped".into());
            for slot in rest {
                let _ = slot.set(None);
            }
        }
    }
}
