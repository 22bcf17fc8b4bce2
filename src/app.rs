//! Wiring: what the binary does with its flags and config (offline dump,
//! or the server with its refresh loop).

use std::io::Write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};

use crate::cli::Args;
use crate::config::Config;
use crate::detect::{self, DetectStats, Masters};
use crate::dns::forward::Forwarder;
use crate::dns::journal::History;
use crate::dns::metrics::DnsMetrics;
use crate::dns::notify::Notifier;
use crate::dns::server::{self, Handler};
use crate::fetch::Fetcher;
use crate::generate::{HostResolver, SystemResolver, generate};
use crate::http::{self, Api};
use crate::metrics::{BuildInfo, Exporter};
use crate::proto::serial_newer;
use crate::records::{Axfr, RecordSet};
use crate::refresh::{Detected, Refresher, Source};
use crate::snapshot::{Current, InService, new_serial};
use crate::state::State;

/// Logs to stderr; `-v=0` warnings and errors (and the few start-up lines
/// of [`crate::START`]), `-v=1` info, `-v=2` debug. `RUST_LOG` overrides.
pub fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => "warn,mesos_dns::start=info",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in files and journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Run what the flags ask for.
pub fn run(args: &Args, config: Config) -> anyhow::Result<()> {
    if args.dump {
        let Some(path) = &args.state_file else {
            anyhow::bail!("-dump needs -state-file=PATH");
        };
        let records = records_from_file(path, &config)?;
        let doc = Axfr::new(records.axfr_records(), &config, new_serial());
        // Buffered: stdout alone writes each line with its own syscall.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, config))
}

/// Raise the soft limit on open files to the hard one: each held
/// blocking query and each TCP client is a socket, and the usual soft
/// limit (1,024) is below the HTTP and DNS connection caps.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct
    // passed, which lives for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let before = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                tracing::debug!("open files limit raised from {before} to {}", limit.rlim_max);
            }
        }
    }
}

/// The server: listeners bound first (a busy port is a start-up error),
/// then the refresh loop, until SIGTERM or SIGINT.
async fn serve(args: &Args, config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let mut detected = None;
    let source = match &args.state_file {
        Some(path) => Source::File(path.clone()),
        None => {
            if let Some(url) = config.parsed.zk.clone() {
                tracing::info!("detecting the leading master through ZooKeeper at {url}");
                let (tx, rx) = watch::channel(Masters::default());
                let stats = Arc::new(DetectStats::default());
                tokio::spawn(detect::watch(url, tx, Arc::clone(&stats)));
                detected = Some(Detected { masters: rx, stats });
            }
            let fetcher = Fetcher::new(&config)?;
            Source::Masters { fetcher, masters: config.masters.clone(), detected: detected.clone() }
        }
    };
    let running = start(Arc::clone(&config), source, Arc::new(SystemResolver)).await?;
    let listening = [("DNS", running.dns_addr, " (UDP and TCP)"), ("HTTP", running.http_addr, "")]
        .into_iter()
        .filter_map(|(what, addr, how)| Some(format!("{what} on {}{how}", addr?)))
        .collect::<Vec<_>>();
    tracing::info!(
        target: crate::START,
        "mesos-dns {} serving the domain {}: {}; records from {}",
        crate::VERSION,
        config.domain,
        listening.join(", "),
        source_text(args, &config),
    );
    let trigger = Arc::clone(&running.trigger);
    let usr1 = tokio::spawn(async move {
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else { return };
        while usr1.recv().await.is_some() {
            tracing::info!("SIGUSR1: refreshing now");
            trigger.notify_one();
        }
    });
    let deadline = zk_deadline(detected.map(|d| d.masters), &config, Arc::clone(&running.current));
    tokio::select! {
        () = shutdown_signal() => {}
        e = deadline => {
            usr1.abort();
            running.shutdown().await;
            return Err(e);
        }
    }
    tracing::info!("shutting down");
    usr1.abort();
    running.shutdown().await;
    Ok(())
}

/// Where the records come from, for the start-up line.
fn source_text(args: &Args, config: &Config) -> String {
    if let Some(path) = &args.state_file {
        return format!(
            "the state file {} (re-read every {} s)",
            path.display(),
            config.refresh_seconds
        );
    }
    let masters = config.masters.join(", ");
    match &config.parsed.zk {
        Some(url) if masters.is_empty() => format!("the leading master in ZooKeeper at {url}"),
        Some(url) => format!("the leading master in ZooKeeper at {url}, else among {masters}"),
        None => format!("the leading master among {masters}"),
    }
}

/// A started server.
pub struct Running {
    /// Where DNS is served (UDP and TCP), when `dnson`.
    pub dns_addr: Option<SocketAddr>,
    /// Where the HTTP API is served, when `httpon`.
    pub http_addr: Option<SocketAddr>,
    /// The records in service.
    pub current: Current,
    /// Wakes the refresh loop for an immediate refresh.
    pub trigger: Arc<Notify>,
    stop: Arc<AtomicBool>,
    http_stop: Arc<Notify>,
    udp_threads: Vec<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    http_task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop gracefully: no new queries or connections are taken, queries
    /// being answered finish (UDP workers notice within 200 ms), HTTP
    /// requests in flight get up to a second.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
        self.http_stop.notify_one();
        if let Some(t) = self.http_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), t).await;
        }
        let threads = self.udp_threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Number the first version after the newest serial the `notify`
/// secondaries hold, when it is ahead of the clock (an earlier run's
/// versions came faster than one a second): otherwise they would keep the
/// older run's zone until the clock caught up.
async fn resume_serial(notifier: &Notifier, current: &Current) {
    let Some(held) = notifier.held_serial(std::time::Duration::from_secs(1)).await else {
        return;
    };
    if serial_newer(held, new_serial()) {
        tracing::info!(
            serial = held,
            "secondaries hold a serial ahead of the clock: numbering after it"
        );
        current.resume_after(held);
    }
}

/// Bind the listeners and start serving and refreshing. Must run inside a
/// tokio runtime.
pub async fn start(
    config: Arc<Config>,
    source: Source,
    resolver: Arc<dyn HostResolver + Send + Sync>,
) -> anyhow::Result<Running> {
    raise_open_files_limit();
    let detect_stats = source.detect_stats();
    let refresher = Refresher::new(Arc::clone(&config), source, resolver);
    let current = Arc::clone(&refresher.current);
    let trigger = Arc::clone(&refresher.trigger);
    let stop = Arc::new(AtomicBool::new(false));
    let http_stop = Arc::new(Notify::new());
    let mut udp_threads = Vec::new();
    let mut tasks = Vec::new();
    let mut dns_addr = None;
    let forwarder =
        if config.dns_on { Forwarder::from_config(&config).map(Arc::new) } else { None };
    let dns_metrics = Arc::new(DnsMetrics::default());
    // Zone transfers: the versions IXFR answers from, and the
    // secondaries told of each.
    let history = Arc::new(History::default());
    let p = &config.parsed;
    let transfers_on = config.dns_on && !(p.allow_transfer_from.is_empty() && p.notify.is_empty());
    if transfers_on {
        tasks.push(tokio::spawn(Arc::clone(&history).follow(&current)));
    }
    let notifier = if config.dns_on { Notifier::new(&config).map(Arc::new) } else { None };
    if let Some(n) = &notifier {
        tasks.push(tokio::spawn(Arc::clone(n).run(Arc::clone(&history), Arc::clone(&current))));
    }
    let mut transfers = None;
    let mut rate_limiter = None;
    if config.dns_on {
        let ip = config.parsed.listener;
        let (udp, tcp) = server::bind(ip, config.port).with_context(|| {
            format!("cannot listen for DNS on {}", SocketAddr::new(ip, config.port))
        })?;
        let addr = udp.local_addr()?;
        tracing::debug!("serving DNS on {addr} (udp and tcp)");
        dns_addr = Some(addr);
        if let Some(f) = &forwarder {
            tracing::info!(
                "forwarding names outside {} (zones: {})",
                config.domain,
                f.zones().join(", ")
            );
        }
        let handler = Arc::new(Handler::new(
            &config,
            Arc::clone(&current),
            forwarder.clone(),
            Arc::clone(&dns_metrics),
            Arc::clone(&history),
            tokio::runtime::Handle::current(),
        ));
        transfers = Some(handler.transfers());
        rate_limiter = handler.rate_limiter();
        if config.rate_limit > 0 {
            tracing::info!(
                "rate limiting UDP answers to {} a second per client /24 (IPv6: /56)",
                config.rate_limit
            );
        }
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        udp_threads = server::spawn_udp(udp, Arc::clone(&handler), workers, Arc::clone(&stop))?;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server::serve_tcp(tcp, handler).await {
                tracing::error!("tcp listener stopped: {e}");
            }
        }));
    }
    let mut http_addr = None;
    let mut http_task = None;
    if config.http_on {
        let ip = config.parsed.http_listener;
        let addr = SocketAddr::new(ip, config.http_port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for HTTP on {addr}"))?;
        let addr = listener.local_addr()?;
        tracing::debug!("serving HTTP on {addr}");
        http_addr = Some(addr);
        // The exporter: every component's counters, in the order
        // `/metrics` shows them.
        let mut exporter = Exporter::default();
        exporter.add(dns_metrics);
        if let Some(r) = rate_limiter {
            exporter.add(r);
        }
        if let Some(f) = forwarder {
            exporter.add(f);
        }
        if let Some(t) = transfers.filter(|_| transfers_on) {
            exporter.add(t);
        }
        if let Some(n) = &notifier {
            exporter.add(Arc::clone(n) as _);
        }
        exporter.add(Arc::clone(&refresher.stats) as _);
        exporter.add(Arc::clone(&refresher.stream) as _);
        if let Some(d) = detect_stats {
            exporter.add(d);
        }
        exporter.add(Arc::new(InService(Arc::clone(&current))));
        exporter.add(Arc::new(BuildInfo(crate::VERSION)));
        let api = Arc::new(Api {
            config: Arc::clone(&config),
            current: Arc::clone(&current),
            exporter,
            answers: Default::default(),
        });
        let cap = usize::try_from(api.config.http_max_connections).unwrap_or(usize::MAX);
        let listener = http::CappedListener::new(listener, cap);
        let router = http::router(api);
        http_task = Some(tokio::spawn(http::serve(listener, router, Arc::clone(&http_stop))));
    }
    if let Some(n) = &notifier {
        resume_serial(n, &current).await;
    }
    tasks.push(tokio::spawn(refresher.run()));
    Ok(Running {
        dns_addr,
        http_addr,
        current,
        trigger,
        stop,
        http_stop,
        udp_threads,
        tasks,
        http_task,
    })
}

/// Without a `masters` fallback, ZooKeeper must name a leader within
/// `zkDetectionTimeout` seconds of start-up (0: no limit), as in the
/// original; a supervisor restarts us. Once records have loaded, ZooKeeper
/// never stops the server. Resolves only with that error.
async fn zk_deadline(
    detected: Option<watch::Receiver<Masters>>,
    config: &Config,
    current: Current,
) -> anyhow::Error {
    let limit = config.zk_detection_timeout;
    let Some(mut rx) = detected.filter(|_| config.masters.is_empty() && limit > 0) else {
        return std::future::pending().await;
    };
    // (The guard `wait_for` returns must not outlive this statement: a held
    // borrow would block detection's next publish.)
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(limit),
        rx.wait_for(|m| m.leader.is_some()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !found && current.load().is_none() {
        return anyhow::anyhow!(
            "no leading master found in ZooKeeper within zkDetectionTimeout ({limit} s) and no \"masters\" to fall back to"
        );
    }
    std::future::pending().await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Read a state capture and generate its records (offline mode).
pub fn records_from_file(path: &std::path::Path, config: &Config) -> anyhow::Result<RecordSet> {
    let bytes = std::fs::read(path).with_context(|| format!("state file {}", path.display()))?;
    let state = State::from_vec(bytes).with_context(|| format!("state file {}", path.display()))?;
    let records = generate(&state, config, &config.masters, &SystemResolver)
        .with_context(|| format!("state file {}", path.display()))?;
    Ok(records)
}
