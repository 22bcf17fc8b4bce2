//! Live records (`stateSource: "auto"`): subscribe to the leading master's
//! event stream, keep the cluster model up to date with each event, and
//! publish new records as soon as an event changes them. Events that arrive
//! while records are being built are published together by the next build.
//!
//! A master that cannot stream (no operator API, a principal not allowed
//! to subscribe, Mesos 1.0) is polled as with `"poll"`, and the stream is
//! tried again now and then; so is one whose stream keeps breaking. The
//! records in service stay while the stream is down.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::DescriptorEncoder;
use reqwest::StatusCode;

use super::live::{Generation, next_version};
use super::{RefreshError, Refresher, leader_change, millis};
use crate::fetch::{FetchError, Fetcher, Subscription, candidates};
use crate::metrics::{AtomicHistogram, Export, counter, gauge, histogram};
use crate::records::live::LiveIndex;
use crate::snapshot::{Changed, Snapshot, next_serial};
use crate::state::cluster::{Applied, Cluster, Touched};
use crate::state::v1::{Event, MasterInfo};

/// How many polls of a master that cannot stream before the stream is
/// tried again (10 minutes with the default `refreshSeconds`).
const POLLS_BEFORE_RETRY: u32 = 10;
/// How many times in a row the stream may break (each time within
/// [`STEADY`] of subscribing) before the masters are polled for a while.
const BREAKS_BEFORE_POLLING: u32 = 3;
/// How many polls after the stream broke repeatedly.
const POLLS_AFTER_BREAKS: u32 = 2;
/// A stream that lasted this long was working: its end starts a new count
/// of breaks.
const STEADY: Duration = Duration::from_secs(60);
/// A full compile is made at most once per this many times its own
/// duration (a twentieth of a core at most).
const COMPACTION_SHARE: u32 = 20;
/// Heartbeats missed before a silent stream counts as stalled.
const MISSED_HEARTBEATS: u32 = 3;

/// Why the stream stopped, as counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// No master could be subscribed to (connection, status, timeout).
    Connect,
    /// The master closed the stream.
    Ended,
    /// Reading the stream failed, or a record was cut or over the cap.
    Broken,
    /// A record that is not an event, or a first event that is not
    /// `SUBSCRIBED`.
    Garbage,
    /// No event or heartbeat for three heartbeat intervals.
    Stalled,
    /// ZooKeeper named a new leader.
    Leader,
    /// Asked (SIGUSR1), or an event named a framework the model lacks.
    Resync,
    /// The records could not be built.
    Build,
}

impl Cause {
    const ALL: [Cause; 8] = [
        Cause::Connect,
        Cause::Ended,
        Cause::Broken,
        Cause::Garbage,
        Cause::Stalled,
        Cause::Leader,
        Cause::Resync,
        Cause::Build,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Cause::Connect => "connect",
            Cause::Ended => "ended",
            Cause::Broken => "broken",
            Cause::Garbage => "garbage",
            Cause::Stalled => "stalled",
            Cause::Leader => "leader",
            Cause::Resync => "resync",
            Cause::Build => "build",
        }
    }
}

/// A full compile under way.
type Build<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Snapshot, RefreshError>> + Send + 'a>,
>;

/// How following a stream ended.
enum Ended {
    /// The masters cannot stream: why.
    Unsupported(String),
    /// The stream stopped; subscribe again.
    Stopped(Cause, String),
}

/// The event types counted one by one; others are counted as `other`.
const EVENT_TYPES: [&str; 11] = [
    "SUBSCRIBED",
    "TASK_ADDED",
    "TASK_UPDATED",
    "FRAMEWORK_ADDED",
    "FRAMEWORK_UPDATED",
    "FRAMEWORK_REMOVED",
    "AGENT_ADDED",
    "AGENT_REMOVED",
    "HEARTBEAT",
    "other",
    "malformed",
];

/// What the stream has done, for `/metrics`.
#[derive(Debug)]
pub struct StreamStats {
    /// Why the masters are polled instead (empty while streaming).
    polling_because: Mutex<String>,
    connected: AtomicU64,
    events: [AtomicU64; EVENT_TYPES.len()],
    unknown: AtomicU64,
    resubscriptions: [AtomicU64; Cause::ALL.len()],
    /// Event received → records published.
    propagation: AtomicHistogram,
}

impl Default for StreamStats {
    fn default() -> Self {
        StreamStats {
            polling_because: Mutex::new("starting".into()),
            connected: AtomicU64::new(0),
            events: Default::default(),
            unknown: AtomicU64::new(0),
            resubscriptions: Default::default(),
            propagation: AtomicHistogram::new(PROPAGATION_BUCKETS),
        }
    }
}

/// Propagation times are milliseconds, not the seconds of a refresh.
const PROPAGATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

impl StreamStats {
    fn event(&self, kind: &str) {
        let i = EVENT_TYPES.iter().position(|t| *t == kind).unwrap_or(EVENT_TYPES.len() - 2);
        if let Some(c) = self.events.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stopped(&self, cause: Cause) {
        let i = Cause::ALL.iter().position(|c| *c == cause).unwrap_or(0);
        if let Some(c) = self.resubscriptions.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn polling(&self, why: &str) {
        if let Ok(mut p) = self.polling_because.lock() {
            why.clone_into(&mut p);
        }
    }
}

impl Export for StreamStats {
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let why = self.polling_because.lock().map(|w| w.clone()).unwrap_or_default();
        let (source, reason) = if why.is_empty() { ("stream", "") } else { ("poll", why.as_str()) };
        gauge(
            e,
            "mesos_dns_state_source",
            "Where the records come from: the masters' event stream, or polling (and why)",
            &[(vec![("source", source), ("reason", reason)], 1.0)],
        )?;
        gauge(
            e,
            "mesos_dns_stream_connected",
            "Whether the event stream of the leading master is open",
            &[(vec![], self.connected.load(Ordering::Relaxed) as f64)],
        )?;
        let events: Vec<_> = EVENT_TYPES
            .iter()
            .zip(&self.events)
            .map(|(t, c)| (vec![("type", *t)], c.load(Ordering::Relaxed)))
            .collect();
        counter(
            e,
            "mesos_dns_stream_events",
            "Events received from the masters, by type",
            &events,
        )?;
        counter(
            e,
            "mesos_dns_stream_unknown_references",
            "Events naming a task, framework or agent the model does not know (ignored)",
            &[(vec![], self.unknown.load(Ordering::Relaxed))],
        )?;
        let causes: Vec<_> = Cause::ALL
            .iter()
            .zip(&self.resubscriptions)
            .map(|(c, n)| (vec![("cause", c.as_str())], n.load(Ordering::Relaxed)))
            .collect();
        counter(
            e,
            "mesos_dns_stream_resubscriptions",
            "Times the event stream stopped and was subscribed to again, by cause",
            &causes,
        )?;
        histogram(
            e,
            "mesos_dns_propagation_seconds",
            "From an event's arrival to the records it changed in service",
            vec![(vec![], vec![&self.propagation])],
        )
    }
}

impl Refresher {
    /// Follow the masters' event stream, forever; poll while they cannot
    /// stream or the stream keeps breaking.
    pub(super) async fn run_streaming(&self, fetcher: &Fetcher) {
        let mut model: Option<Cluster> = None;
        let mut breaks = 0u32;
        let period = Duration::from_secs(self.config.refresh_seconds.max(1));
        loop {
            let started = Instant::now();
            let ended = self.follow(fetcher, &mut model).await;
            self.stream.connected.store(0, Ordering::Relaxed);
            match ended {
                Ended::Unsupported(why) => {
                    let retry = period * POLLS_BEFORE_RETRY;
                    tracing::warn!(
                        "the masters cannot stream events ({why}): polling /master/state every {} s, trying the stream again in {} s",
                        period.as_secs(),
                        retry.as_secs()
                    );
                    self.stream.polling(&why);
                    self.poll(Some(Instant::now() + retry)).await;
                    breaks = 0;
                }
                Ended::Stopped(cause, why) => {
                    self.stream.stopped(cause);
                    if started.elapsed() >= STEADY {
                        breaks = 0;
                    }
                    breaks += 1;
                    if breaks >= BREAKS_BEFORE_POLLING {
                        let retry = period * POLLS_AFTER_BREAKS;
                        tracing::warn!(
                            "the event stream stopped {breaks} times in a row ({why}): polling /master/state for {} s",
                            retry.as_secs()
                        );
                        self.stream.polling(&format!("stream stopped: {}", cause.as_str()));
                        self.poll(Some(Instant::now() + retry)).await;
                        breaks = 0;
                    } else {
                        let backoff = Duration::from_millis(250 << breaks.min(6));
                        tracing::info!(
                            "event stream stopped ({why}); subscribing again in {} ms",
                            backoff.as_millis()
                        );
                        tokio::time::sleep(backoff).await;
                    }
                }
            }
        }
    }

    /// Subscribe, publish the records of the first state, then apply events
    /// until the stream stops. `model` is the model of the previous
    /// subscription (failover carries some of it over), and of this one
    /// when it returns.
    async fn follow(&self, fetcher: &Fetcher, model: &mut Option<Cluster>) -> Ended {
        let asked = Instant::now();
        let (mut sub, leader) = match self.subscribe(fetcher).await {
            Ok(found) => found,
            Err(ended) => return ended,
        };
        let first = tokio::time::timeout(sub.first_event_timeout, sub.next_event()).await;
        let bytes = match first {
            Err(_) => {
                let why = format!("{}: no event within {:?}", sub.master, sub.first_event_timeout);
                return Ended::Stopped(Cause::Stalled, why);
            }
            Ok(Err(e)) => return Ended::Stopped(Cause::Broken, e.to_string()),
            Ok(Ok(None)) => {
                return Ended::Stopped(
                    Cause::Ended,
                    format!("{}: stream ended at once", sub.master),
                );
            }
            Ok(Ok(Some(bytes))) => bytes,
        };
        // The first event holds the whole state: parsed off the async threads.
        let event = match tokio::task::spawn_blocking(move || Event::parse(&bytes)).await {
            Ok(Ok(event)) => event,
            Ok(Err(e)) => return Ended::Stopped(Cause::Garbage, format!("{}: {e}", sub.master)),
            Err(e) => return Ended::Stopped(Cause::Garbage, e.to_string()),
        };
        let Event::Subscribed { state, heartbeat } = event else {
            let why = format!("{}: first event is {}, not SUBSCRIBED", sub.master, event.kind());
            return Ended::Stopped(Cause::Garbage, why);
        };
        self.stream.event("SUBSCRIBED");
        let (cluster, orphans) = Cluster::subscribed(state, leader.pid.clone(), model.as_ref());
        if orphans > 0 {
            tracing::warn!("{}: {orphans} tasks of unknown frameworks ignored", sub.master);
        }
        let cluster = model.insert(cluster);
        let published =
            match self.publish(cluster.state(), Some(sub.master.clone()), Duration::ZERO).await {
                Ok(p) => p,
                Err(e) => return Ended::Stopped(Cause::Build, e.to_string()),
            };
        self.stream.connected.store(1, Ordering::Relaxed);
        self.stream.polling("");
        let first = self.stats.ok.fetch_add(1, Ordering::Relaxed) == 0;
        if first {
            self.log_first_records(&published, asked);
        }
        tracing::info!(
            tasks = cluster.task_count(),
            names = published.zone.stats.names,
            unhealthy = published.records.unhealthy,
            heartbeat_s = heartbeat.map(|h| h.as_secs_f64()),
            ms = millis(asked.elapsed()),
            "following the event stream of {}",
            sub.master
        );
        // The records of each part of the cluster, for versions made of
        // what changed: built off the async threads, once.
        let copy = cluster.clone();
        let (config, resolver, masters) =
            (Arc::clone(&self.config), Arc::clone(&self.resolver), self.known_masters());
        let indexed = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let g = Generation { config: &config, masters: &masters, resolver: resolver.as_ref() };
            g.index(&copy).map(|index| (index, started.elapsed()))
        })
        .await;
        let mut index = match indexed {
            Ok(Ok((index, took))) => {
                tracing::debug!(names = index.len(), ms = millis(took), "records indexed by part");
                index
            }
            Ok(Err(e)) => return Ended::Stopped(Cause::Build, e.to_string()),
            Err(e) => return Ended::Stopped(Cause::Build, e.to_string()),
        };
        let stall = heartbeat.map(|h| h * MISSED_HEARTBEATS);
        self.apply_events(&mut sub, cluster, &mut index, stall).await
    }

    /// Apply the stream's events to `cluster`, publishing a new version as
    /// soon as they change records (events already arrived go into it
    /// together); returns when the stream stops. A version compiles only
    /// what changed, over the zone in service; now and then a full compile
    /// in the background folds those versions away, at most a twentieth of
    /// the time (its cost twenty times over between two).
    async fn apply_events(
        &self,
        sub: &mut Subscription,
        cluster: &mut Cluster,
        index: &mut LiveIndex,
        stall: Option<Duration>,
    ) -> Ended {
        let mut detected = self.detected();
        let leader = sub.master.clone();
        let masters = self.known_masters();
        // The parts changed since the last version, and when the first of
        // their events arrived.
        let mut touched: Vec<Touched> = Vec::new();
        let mut first: Option<Instant> = None;
        let mut version: u64 = 0;
        // The full compile under way: the build, the version it holds, when
        // it started.
        let mut compaction: Option<(Build<'_>, u64, Instant)> = None;
        let mut next_compaction = Instant::now();
        let ended = loop {
            if first.is_some() && !sub.has_event() {
                version += 1;
                let g = Generation {
                    config: &self.config,
                    masters: &masters,
                    resolver: self.resolver.as_ref(),
                };
                if let Err(e) = g.update(index, cluster, touched.drain(..)) {
                    break Ended::Stopped(Cause::Build, e.to_string());
                }
                let current = self.current.load_full();
                if let Some(current) = current {
                    let serial = next_serial(Some(current.serial()));
                    if let Some(next) = next_version(&current, index, &self.config, serial, version)
                    {
                        self.swap(next.snapshot, Changed::Names(&next.changed));
                    }
                }
                if let Some(first) = first.take() {
                    self.stream.propagation.observe(first.elapsed());
                }
            }
            // The serial of the version in service, when versions are laid
            // over its compiled zone.
            let overlaid =
                self.current.load().as_ref().filter(|s| s.overlay.is_some()).map(|s| s.serial());
            // A full compile of the newest version (nothing applied waits
            // to be published): the same records, under the same serial.
            if let Some(serial) = overlaid
                && compaction.is_none()
                && first.is_none()
                && Instant::now() >= next_compaction
            {
                let build =
                    self.builder(cluster.state(), Some(leader.clone()), Duration::ZERO, serial);
                compaction = Some((Box::pin(in_background(build)), version, Instant::now()));
            }
            let overlaid = overlaid.is_some();
            let next = async {
                match stall {
                    Some(limit) => tokio::time::timeout(limit, sub.next_event()).await.ok(),
                    None => Some(sub.next_event().await),
                }
            };
            // Wakes the loop when a compaction is due and no event comes.
            let idle = overlaid && compaction.is_none();
            let due = async {
                if idle {
                    tokio::time::sleep_until(next_compaction.into()).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let compacted = async {
                match compaction.as_mut() {
                    Some((build, _, _)) => build.await,
                    None => std::future::pending().await,
                }
            };
            let read = tokio::select! {
                () = due => continue,
                built = compacted => {
                    let Some((_, at, started)) = compaction.take() else { continue };
                    match built {
                        Ok(base) => {
                            let took = started.elapsed();
                            tracing::debug!(
                                names = base.zone.stats.names,
                                ms = millis(took),
                                "versions folded into a full compile"
                            );
                            self.fold(base, at);
                            next_compaction = Instant::now() + took * COMPACTION_SHARE;
                        }
                        Err(e) => break Ended::Stopped(Cause::Build, e.to_string()),
                    }
                    continue;
                }
                read = next => read,
                () = leader_change(&mut detected) => {
                    break Ended::Stopped(Cause::Leader, "ZooKeeper named a new leader".into());
                }
                () = self.trigger.notified() => {
                    break Ended::Stopped(Cause::Resync, "asked to load the state again".into());
                }
                () = self.current.compile_wanted() => {
                    // A view of the whole record set was asked for.
                    next_compaction = Instant::now();
                    continue;
                }
            };
            let bytes = match read {
                None => {
                    let why =
                        format!("{leader}: no event for {MISSED_HEARTBEATS} heartbeat intervals");
                    break Ended::Stopped(Cause::Stalled, why);
                }
                Some(Err(e)) => break Ended::Stopped(Cause::Broken, e.to_string()),
                Some(Ok(None)) => {
                    break Ended::Stopped(Cause::Ended, format!("{leader} closed the stream"));
                }
                Some(Ok(Some(bytes))) => bytes,
            };
            let received = Instant::now();
            if let Some(s) = self.current.load().as_ref() {
                s.confirm();
            }
            let event = match Event::parse(&bytes) {
                Ok(event) => event,
                Err(e) => {
                    // One unreadable record: skipped, counted; the stream
                    // goes on (its framing is intact).
                    self.stream.event("malformed");
                    tracing::warn!("{leader}: event skipped: {e}");
                    continue;
                }
            };
            self.stream.event(event.kind());
            if matches!(event, Event::Subscribed { .. }) {
                break Ended::Stopped(Cause::Garbage, format!("{leader}: SUBSCRIBED again"));
            }
            match cluster.apply(event) {
                Applied::Changed(parts) => {
                    touched.extend(parts);
                    first.get_or_insert(received);
                }
                Applied::Unchanged => {}
                Applied::Unknown(what) => {
                    self.stream.unknown.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("{leader}: event for unknown {what} ignored");
                }
            }
        };
        // What was applied goes into service before subscribing again.
        if first.is_some() {
            let _ = self.publish(cluster.state(), Some(leader), Duration::ZERO).await;
        }
        ended
    }

    /// Put a full compile made at version `at` in service, with the
    /// versions made since laid over it.
    fn fold(&self, base: Snapshot, at: u64) {
        let current = self.current.load_full();
        let later = current.as_ref().and_then(|c| c.overlay.as_ref()).and_then(|o| o.after(at));
        let folded = match later {
            Some(overlay) => Snapshot::with_overlay(&base, overlay),
            None => base,
        };
        // The same answers, compiled afresh.
        self.swap(folded, Changed::Nothing);
    }

    /// Open a stream from the leader, trying the masters in the order a
    /// poll would; a redirect is followed once. The master's info comes
    /// with it.
    async fn subscribe(&self, fetcher: &Fetcher) -> Result<(Subscription, MasterInfo), Ended> {
        let mut errors = Vec::new();
        for master in candidates(self.master_order()) {
            let mut target = master.clone();
            for _hop in 0..2 {
                let opened = tokio::time::timeout(
                    Duration::from_secs(self.config.state_timeout_seconds.max(1)),
                    fetcher.subscribe(&target),
                )
                .await;
                match opened {
                    Err(_) => errors.push(format!("{target}: no answer in time")),
                    Ok(Ok(sub)) => return self.check_master(fetcher, sub).await,
                    Ok(Err(FetchError::Redirect { location, .. })) => {
                        match redirect_target(&location) {
                            Some(leader) if leader != target => {
                                tracing::info!(
                                    "master {target} is not the leader; subscribing to {leader}"
                                );
                                target = leader;
                                continue;
                            }
                            _ => errors.push(format!("{target}: redirected to {location:?}")),
                        }
                    }
                    Ok(Err(e)) => {
                        if let Some(why) = cannot_stream(&e) {
                            return Err(Ended::Unsupported(why));
                        }
                        errors.push(e.to_string());
                    }
                }
                break;
            }
        }
        if errors.is_empty() {
            errors.push(FetchError::NoMasters.to_string());
        }
        Err(Ended::Stopped(Cause::Connect, errors.join("; ")))
    }

    /// The leader's info (`GET_MASTER`); a Mesos too old to stream usable
    /// events is refused.
    async fn check_master(
        &self,
        fetcher: &Fetcher,
        sub: Subscription,
    ) -> Result<(Subscription, MasterInfo), Ended> {
        let info = match fetcher.call(&sub.master, r#"{"type":"GET_MASTER"}"#).await {
            Ok(body) => MasterInfo::parse(&body).unwrap_or_default(),
            Err(e) => {
                tracing::debug!("GET_MASTER: {e}");
                MasterInfo::default()
            }
        };
        if info.version.starts_with("0.") || info.version.starts_with("1.0.") {
            return Err(Ended::Unsupported(format!(
                "{}: Mesos {} streams no task statuses (1.1 or later needed)",
                sub.master, info.version
            )));
        }
        let pid = if info.pid.is_empty() { format!("master@{}", sub.master) } else { info.pid };
        Ok((sub, MasterInfo { pid, ..info }))
    }
}

/// Run `build` on a thread of its own at a lower CPU priority (nice 10,
/// which the threads it starts inherit), so that a full compile never
/// holds up the threads that answer DNS.
async fn in_background(
    build: impl FnOnce() -> Result<Snapshot, RefreshError> + Send + 'static,
) -> Result<Snapshot, RefreshError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("compaction".into()).spawn(move || {
        // SAFETY: setpriority only reads its integer arguments; `0` names
        // the calling thread (Linux: priorities are per thread).
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        let _ = tx.send(build());
    });
    if let Err(e) = spawned {
        return Err(RefreshError::Worker(format!("cannot start a thread: {e}")));
    }
    rx.await.unwrap_or_else(|_| Err(RefreshError::Worker("the compaction thread stopped".into())))
}

/// Why a master's refusal means it cannot stream (as opposed to failing
/// now): no operator API (404, 405, 501: before Mesos 1.0), or a principal
/// not allowed to subscribe (403).
fn cannot_stream(e: &FetchError) -> Option<String> {
    match e {
        FetchError::Status { url, status }
            if [
                StatusCode::NOT_FOUND,
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::NOT_IMPLEMENTED,
            ]
            .contains(status) =>
        {
            Some(format!("{url}: HTTP {status}: no operator API"))
        }
        FetchError::Auth { url, status, .. } if *status == StatusCode::FORBIDDEN => {
            Some(format!("{url}: HTTP {status}: not allowed to subscribe"))
        }
        _ => None,
    }
}

/// The `host:port` a redirect's `Location` points at:
/// `//10.0.0.2:5050/master/api/v1`, or with a scheme.
fn redirect_target(location: &str) -> Option<String> {
    let rest = location.split_once("//").map_or(location, |(_, r)| r);
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then(|| authority.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_name_the_leader() {
        assert_eq!(
            redirect_target("//10.0.0.2:5050/master/api/v1").as_deref(),
            Some("10.0.0.2:5050")
        );
        assert_eq!(redirect_target("http://m2:5050/api/v1").as_deref(), Some("m2:5050"));
        assert_eq!(redirect_target("//"), None);
    }
}
