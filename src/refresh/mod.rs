//! The refresh loop (docs/architecture.md): where records come from and when
//! new ones are published. With `stateSource: "poll"` (or a state file),
//! every `refreshSeconds` and whenever asked: fetch → generate → compile →
//! swap. With `"auto"` (`follow`): the leading master's event stream,
//! records published as events change them. A failure at any step keeps
//! the records in service, is logged with its cause, and counted.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::DescriptorEncoder;
use tokio::sync::{Notify, watch};

use crate::config::{Config, StateSource};
use crate::detect::{DetectStats, Masters};
use crate::fetch::{Fetcher, candidates, upid_address};
use crate::generate::{HostResolver, generate};
use crate::metrics::{AtomicHistogram, Export, SLOW_BUCKETS, counter, histogram};
use crate::snapshot::{Changed, Current, Published, Snapshot, Timings, next_serial};
use crate::state::State;
use crate::zone::Zone;

mod follow;
pub mod live;

pub use follow::StreamStats;

/// A parsed state document, and what parsing it took.
struct Parsed {
    state: State,
    /// The outline pass ([`State::from_vec`]).
    parse: Duration,
    /// When the state's bytes were in hand.
    received: Instant,
}

/// A parsed state and the leader it came from.
struct Loaded {
    parsed: Parsed,
    leader: Option<String>,
}

/// Where states come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Ask the masters: the leader found in ZooKeeper (`detected`, when
    /// `zk` is configured), the last leader, the ZooKeeper members, then
    /// the configured `masters` in order.
    Masters {
        /// The HTTP(S) client that asks a master for its state.
        fetcher: Fetcher,
        /// The configured `masters`, `host:port`.
        masters: Vec<String>,
        /// The ZooKeeper detection, when `zk` is configured.
        detected: Option<Detected>,
    },
    /// Re-read a state capture from a file every refresh (`-state-file`).
    File(PathBuf),
}

/// ZooKeeper leader detection feeding the refresh loop.
#[derive(Debug, Clone)]
pub struct Detected {
    pub(crate) masters: watch::Receiver<Masters>,
    pub(crate) stats: Arc<DetectStats>,
}

impl Source {
    /// The detection counters, when ZooKeeper is used.
    pub fn detect_stats(&self) -> Option<Arc<DetectStats>> {
        match self {
            Source::Masters { detected: Some(d), .. } => Some(Arc::clone(&d.stats)),
            _ => None,
        }
    }
}

/// Counters of refresh outcomes.
#[derive(Debug)]
pub struct RefreshStats {
    ok: AtomicU64,
    failed: AtomicU64,
    duration: AtomicHistogram,
}

impl Default for RefreshStats {
    fn default() -> Self {
        RefreshStats {
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            duration: AtomicHistogram::new(SLOW_BUCKETS),
        }
    }
}

impl Export for RefreshStats {
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        counter(
            e,
            "mesos_dns_state_fetches",
            "Refreshes (fetch, generate, compile), by outcome",
            &[
                (vec![("outcome", "ok")], self.ok.load(Ordering::Relaxed)),
                (vec![("outcome", "failed")], self.failed.load(Ordering::Relaxed)),
            ],
        )?;
        histogram(
            e,
            "mesos_dns_state_fetch_duration_seconds",
            "Duration of a refresh, successful or not",
            vec![(vec![], vec![&self.duration])],
        )
    }
}

/// Why one refresh failed (the records in service stay).
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// No master answered with a state; each one's error, joined by `; `.
    #[error("no master answered with a state: {0}")]
    Fetch(String),
    /// The `-state-file` could not be read.
    #[error("state file {path}: {source}")]
    File {
        /// The file's path.
        path: String,
        /// Why reading it failed.
        source: std::io::Error,
    },
    /// The state document could not be parsed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Records could not be generated from the state (no or bad leader, an
    /// unreadable task).
    #[error(transparent)]
    Generate(#[from] crate::generate::GenerateError),
    /// A worker thread (parsing, or generating and compiling) panicked or
    /// was cancelled.
    #[error("worker thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A thread of our own could not start, or stopped without an answer.
    #[error("worker thread failed: {0}")]
    Worker(String),
}

/// Owns the refresh schedule and publishes snapshots.
pub struct Refresher {
    config: Arc<Config>,
    source: Source,
    resolver: Arc<dyn HostResolver + Send + Sync>,
    pub(crate) current: Current,
    pub(crate) stats: Arc<RefreshStats>,
    /// What the event stream has done.
    pub(crate) stream: Arc<StreamStats>,
    /// Wakes the loop for an immediate refresh (SIGUSR1, new leader).
    pub trigger: Arc<Notify>,
}

impl Refresher {
    pub(crate) fn new(
        config: Arc<Config>,
        source: Source,
        resolver: Arc<dyn HostResolver + Send + Sync>,
    ) -> Self {
        Refresher {
            config,
            source,
            resolver,
            current: Arc::new(Published::default()),
            stats: Arc::new(RefreshStats::default()),
            stream: Arc::new(StreamStats::default()),
            trigger: Arc::new(Notify::new()),
        }
    }

    /// Follow the leading master's event stream (`stateSource: "auto"`),
    /// or refresh now, then every `refreshSeconds`, when triggered, and
    /// when ZooKeeper reports a new leader. Never returns.
    pub async fn run(self) {
        match (&self.source, self.config.state_source) {
            (Source::Masters { fetcher, .. }, StateSource::Auto) => {
                let fetcher = fetcher.clone();
                self.run_streaming(&fetcher).await;
            }
            _ => {
                self.stream.polling("stateSource is poll");
                self.poll(None).await;
            }
        }
    }

    /// Refresh now, then every `refreshSeconds`, when triggered, and when
    /// ZooKeeper reports a new leader; until `until`, when given.
    async fn poll(&self, until: Option<Instant>) {
        let period = Duration::from_secs(self.config.refresh_seconds.max(1));
        let mut detected = self.detected();
        loop {
            self.refresh_logged().await;
            let wait =
                until.map_or(period, |u| period.min(u.saturating_duration_since(Instant::now())));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.trigger.notified() => {}
                () = leader_change(&mut detected) => {
                    tracing::info!("new leading master in ZooKeeper; refreshing now");
                }
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return;
            }
        }
    }

    /// ZooKeeper's view of the masters, when it is used.
    fn detected(&self) -> Option<watch::Receiver<Masters>> {
        match &self.source {
            Source::Masters { detected, .. } => detected.as_ref().map(|d| d.masters.clone()),
            Source::File(_) => None,
        }
    }

    /// The masters to ask, best first: the leader ZooKeeper names, the
    /// last leader, ZooKeeper's members, the configured `masters`.
    fn master_order(&self) -> Vec<String> {
        let Source::Masters { masters, detected, .. } = &self.source else {
            return Vec::new();
        };
        let last = self.current.load().as_ref().and_then(|s| s.leader.clone());
        let zk = detected.as_ref().map(|d| d.masters.borrow().clone()).unwrap_or_default();
        zk.leader.into_iter().chain(last).chain(zk.all).chain(masters.iter().cloned()).collect()
    }

    /// The start-up line for the first records in service.
    fn log_first_records(&self, s: &Snapshot, asked: Instant) {
        let st = &s.zone.stats;
        tracing::info!(
            target: crate::START,
            "first records in service: {} names ({} A, {} AAAA, {} SRV), from {}, {} ms after asking",
            st.names,
            st.a,
            st.aaaa,
            st.srv,
            s.leader.as_deref().unwrap_or("a state naming no leader"),
            asked.elapsed().as_millis(),
        );
    }

    /// One refresh, with its outcome logged and counted.
    pub async fn refresh_logged(&self) {
        let started = Instant::now();
        let result = self.refresh().await;
        self.stats.duration.observe(started.elapsed());
        match result {
            Ok(reload) => {
                let first = self.stats.ok.fetch_add(1, Ordering::Relaxed) == 0;
                if let Some(s) = self.current.load().as_ref() {
                    if first {
                        self.log_first_records(s, started);
                    }
                    let t = &s.timings;
                    tracing::info!(
                        names = s.zone.stats.names,
                        a = s.zone.stats.a,
                        aaaa = s.zone.stats.aaaa,
                        srv = s.zone.stats.srv,
                        skipped = s.records.skipped,
                        unhealthy = s.records.unhealthy,
                        ms = started.elapsed().as_millis() as u64,
                        reload_ms = millis(reload),
                        parse_ms = millis(t.parse),
                        generate_ms = millis(t.generate),
                        compile_ms = millis(t.compile),
                        "records refreshed"
                    );
                }
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let keeping = if self.current.load().is_some() {
                    "keeping the last good records"
                } else {
                    "no records yet"
                };
                tracing::error!("refresh failed ({keeping}): {e}");
            }
        }
    }

    /// One refresh: fetch → generate → compile → swap. Returns the reload
    /// time: from the state's bytes in hand (fetched or read) to the new
    /// zone published, one wall-clock span over parse, generate, compile
    /// and the swap (which overlap: task objects are parsed during
    /// generation).
    pub async fn refresh(&self) -> Result<Duration, RefreshError> {
        let Loaded { parsed: Parsed { state, parse, received }, leader } =
            self.load_state().await?;
        self.publish(state, leader, parse).await?;
        Ok(received.elapsed())
    }

    /// Generate and compile the records of `state` on a blocking thread,
    /// then put them in service. Returns what was published.
    async fn publish(
        &self,
        state: State,
        leader: Option<String>,
        parse: Duration,
    ) -> Result<Arc<Snapshot>, RefreshError> {
        let snapshot = self.build(state, leader, parse).await?;
        Ok(self.swap(snapshot, Changed::Everything))
    }

    /// Generate and compile the records of `state` on a blocking thread.
    async fn build(
        &self,
        state: State,
        leader: Option<String>,
        parse: Duration,
    ) -> Result<Snapshot, RefreshError> {
        let serial = next_serial(self.current.serial());
        let build = self.builder(state, leader, parse, serial);
        tokio::task::spawn_blocking(build).await?
    }

    /// Generating and compiling the records of `state` as zone `serial`,
    /// to run on a thread.
    fn builder(
        &self,
        state: State,
        leader: Option<String>,
        parse: Duration,
        serial: u32,
    ) -> impl FnOnce() -> Result<Snapshot, RefreshError> + Send + 'static {
        let masters = self.known_masters();
        let config = Arc::clone(&self.config);
        let resolver = Arc::clone(&self.resolver);
        let current = self.current.load_full();
        let taken = Instant::now();
        move || {
            let started = Instant::now();
            let records = generate(&state, &config, &masters, resolver.as_ref())?;
            drop(state);
            // The same records as in service (a state polled again with
            // nothing changed): the same zone, so the same serial (RFC
            // 1034), and secondaries are not sent to fetch nothing. Not
            // over a live overlay: its changes are not in `records`.
            let serial = match current.as_deref() {
                Some(c) if c.overlay.is_none() && c.records.same_records(&records) => c.zone.serial,
                _ => serial,
            };
            drop(current);
            crate::memory::release_free_memory();
            let generated = Instant::now();
            let zone = Zone::compile(&records, &config, serial);
            let timings =
                Timings { parse, generate: generated - started, compile: generated.elapsed() };
            Ok(Snapshot::new(zone, records, leader, timings).taken(taken))
        }
    }

    /// Put `snapshot` in service; wake those watching what it `changed`.
    fn swap(&self, snapshot: Snapshot, changed: Changed<'_>) -> Arc<Snapshot> {
        let (snapshot, old) = self.current.swap(snapshot, changed);
        let published = Arc::clone(&snapshot);
        // Freeing a big record set takes a while: not on the async threads.
        // Then hand the memory the refresh freed back to the system, so the
        // resident set between refreshes is what the records need, and move
        // the new zone onto 2 MiB pages (after it is published: the copy
        // takes ~1 ms per 2 MiB). A version over the same zone frees and
        // moves nothing.
        let new_zone = old.as_ref().is_none_or(|o| !Arc::ptr_eq(&o.zone, &snapshot.zone));
        if new_zone {
            tokio::task::spawn_blocking(move || {
                drop(old);
                crate::memory::release_free_memory();
                let started = Instant::now();
                let done = snapshot.zone.collapse_to_huge_pages();
                tracing::debug!(
                    pages = done.pages,
                    refused = done.refused,
                    ms = millis(started.elapsed()),
                    "zone moved onto 2 MiB pages"
                );
            });
        }
        published
    }

    async fn load_state(&self) -> Result<Loaded, RefreshError> {
        match &self.source {
            Source::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|source| RefreshError::File {
                    path: path.display().to_string(),
                    source,
                })?;
                let parsed = parse_blocking(bytes).await?;
                let leader = upid_address(&parsed.state.leader);
                Ok(Loaded { parsed, leader })
            }
            Source::Masters { fetcher, .. } => {
                let mut errors = Vec::new();
                for master in candidates(self.master_order()) {
                    match self.fetch_via(fetcher, &master).await {
                        Ok(found) => {
                            if !errors.is_empty() {
                                // Served, but an operator should know.
                                tracing::warn!("masters that failed first: {}", errors.join("; "));
                            }
                            return Ok(found);
                        }
                        Err(e) => errors.push(e),
                    }
                }
                if errors.is_empty() {
                    errors.push(crate::fetch::FetchError::NoMasters.to_string());
                }
                Err(RefreshError::Fetch(errors.join("; ")))
            }
        }
    }

    /// The masters for the `master`/`masterN` records: ZooKeeper's members
    /// (leader first) when it knows any, else the configured `masters`.
    fn known_masters(&self) -> Vec<String> {
        let detected = match &self.source {
            Source::Masters { detected: Some(d), .. } => d.masters.borrow().all.clone(),
            _ => Vec::new(),
        };
        if detected.is_empty() { self.config.masters.clone() } else { detected }
    }

    /// The state from `master`; if it names another leader, from that one.
    async fn fetch_via(&self, fetcher: &Fetcher, master: &str) -> Result<Loaded, String> {
        let parsed = self.fetch_parse(fetcher, master).await?;
        let Some(leader) = upid_address(&parsed.state.leader) else {
            let named = &parsed.state.leader;
            return Err(format!("{master}: the state names no leader ({named:?})"));
        };
        if leader == master {
            return Ok(Loaded { parsed, leader: Some(leader) });
        }
        tracing::info!("master {master} is not the leader; asking {leader}");
        let parsed = self.fetch_parse(fetcher, &leader).await?;
        Ok(Loaded { parsed, leader: Some(leader) })
    }

    async fn fetch_parse(&self, fetcher: &Fetcher, master: &str) -> Result<Parsed, String> {
        let bytes = fetcher.fetch(master).await.map_err(|e| e.to_string())?;
        parse_blocking(bytes).await.map_err(|e| format!("{master}: {e}"))
    }
}

/// Resolves when the detected leader changes (never without detection).
async fn leader_change(detected: &mut Option<watch::Receiver<Masters>>) {
    let Some(rx) = detected else {
        return std::future::pending().await;
    };
    let before = rx.borrow_and_update().leader.clone();
    loop {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        if rx.borrow_and_update().leader != before {
            return;
        }
    }
}

/// Parse on a blocking thread. A big state's task objects are still
/// being parsed, on a thread of their own, when this returns (see
/// [`State::from_vec`]): generation overlaps them.
async fn parse_blocking(bytes: Vec<u8>) -> Result<Parsed, RefreshError> {
    let received = Instant::now();
    let parsed = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let parsed = State::from_vec(bytes).map(|state| (state, started.elapsed()));
        crate::memory::release_free_memory();
        parsed
    });
    let (state, parse) = parsed.await??;
    Ok(Parsed { state, parse, received })
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
