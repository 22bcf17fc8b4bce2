//! The TCP connection table: at most [`MAX_TCP_CONNECTIONS`] open. At the
//! cap, a new connection is admitted by closing the one idle longest (no
//! query in flight, no answer being written); a connection with a query in
//! flight is never cut for this. While the table is over three quarters
//! full, idle connections are closed after [`TCP_BUSY_IDLE_TIMEOUT`]
//! instead of [`TCP_IDLE_TIMEOUT`]. So a flood of idle connections cannot
//! keep real clients (those that retry over TCP after a truncated answer)
//! waiting, as NSD, Knot and unbound do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a TCP connection may sit idle between queries.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The same while the table is over three quarters full.
pub const TCP_BUSY_IDLE_TIMEOUT: Duration = Duration::from_secs(1);
/// The most TCP connections open at once.
pub const MAX_TCP_CONNECTIONS: usize = 1024;

/// The open connections, and what they are doing.
#[derive(Debug)]
pub struct Table {
    max: usize,
    open: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    /// A connection closed: one waiting for admission may go in.
    freed: Notify,
    /// Connections closed to admit another.
    pub evicted: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    /// Since when it waits for a query (`None`: one is in flight).
    idle_since: Option<Instant>,
    close: Arc<Notify>,
}

impl Table {
    /// A table of at most `max` connections.
    pub fn new(max: usize) -> Table {
        Table {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            freed: Notify::new(),
            evicted: AtomicU64::new(0),
        }
    }

    /// A place for a new connection: at once while there is room or an
    /// idle connection to close for it; otherwise once one closes.
    pub async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_admit() {
                return slot;
            }
            freed.await;
        }
    }

    fn try_admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        if open.len() >= self.max {
            let idlest = open
                .iter()
                .filter_map(|(id, e)| e.idle_since.map(|since| (since, *id)))
                .min()
                .map(|(_, id)| id)?;
            if let Some(e) = open.remove(&idlest) {
                e.close.notify_one();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        // New connections count as idle until their first query.
        open.insert(id, Entry { idle_since: Some(Instant::now()), close: Arc::clone(&close) });
        Some(Slot { table: Arc::clone(self), id, close })
    }

    /// How long an idle connection may wait for its next query now.
    pub fn idle_timeout(&self) -> Duration {
        let open = self.len();
        if open * 4 > self.max * 3 { TCP_BUSY_IDLE_TIMEOUT } else { TCP_IDLE_TIMEOUT }
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.open.lock().map_or(0, |o| o.len())
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_idle(&self, id: u64, idle: bool) {
        if let Ok(mut open) = self.open.lock()
            && let Some(e) = open.get_mut(&id)
        {
            e.idle_since = idle.then(Instant::now);
        }
    }
}

/// One connection's place in the table, given up when dropped.
#[derive(Debug)]
pub struct Slot {
    table: Arc<Table>,
    id: u64,
    close: Arc<Notify>,
}

impl Slot {
    /// The connection waits for its next query: it may be closed for a
    /// new one.
    pub fn idle(&self) {
        self.table.set_idle(self.id, true);
    }

    /// A query is in flight: it is not closed for a new one.
    pub fn busy(&self) {
        self.table.set_idle(self.id, false);
    }

    /// Resolves when the connection was chosen to make room.
    pub async fn evicted(&self) {
        self.close.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock() {
            open.remove(&self.id);
        }
        self.table.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_idlest_makes_room_and_busy_ones_never_do() {
        let table = Arc::new(Table::new(3));
        let a = table.admit().await;
        let b = table.admit().await;
        let c = table.admit().await;
        a.busy();
        c.busy();
        // b is the only idle one: it is closed for d.
        let d = table.admit().await;
        assert_eq!(table.evicted.load(Ordering::Relaxed), 1);
        tokio::time::timeout(Duration::from_millis(100), b.evicted()).await.unwrap();
        drop(b);
        assert_eq!(table.len(), 3);
        // All busy: the next waits until one closes.
        d.busy();
        let waiting = tokio::spawn({
            let table = Arc::clone(&table);
            async move { table.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "admitted by cutting a busy connection");
        drop(a);
        let e = tokio::time::timeout(Duration::from_secs(1), waiting).await.unwrap().unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table.evicted.load(Ordering::Relaxed), 1);
        drop((c, d, e));
        assert!(table.is_empty());
    }

    #[test]
    fn the_idle_timeout_shortens_over_three_quarters() {
        let table = Table::new(4);
        assert_eq!(table.idle_timeout(), TCP_IDLE_TIMEOUT);
        if let Ok(mut open) = table.open.lock() {
            for id in 0..4 {
                open.insert(id, Entry { idle_since: None, close: Arc::new(Notify::new()) });
            }
        }
        assert_eq!(table.idle_timeout(), TCP_BUSY_IDLE_TIMEOUT);
    }
}
