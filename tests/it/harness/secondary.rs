//! Real secondaries of our server: Debian's NSD (`/usr/sbin/nsd`, 4.6)
//! and Knot DNS (`/usr/sbin/knotd`, 3.2) started in the foreground as
//! secondaries of one zone, each on a free 127.0.0.1 port with its own
//! configuration, state and log in a temporary directory, and killed on
//! drop (or when the thread that started them exits).
//!
//! Each one asks the primary for the zone (IXFR, or AXFR when it has none)
//! as soon as it starts, accepts NOTIFY from the primary's address (any
//! source port), and then transfers at once on a NOTIFY: its SOA refresh
//! timer (ours is 60 s) is left alone, so a test that sees a new serial
//! within seconds has seen NOTIFY work. Only a *failed* refresh is retried
//! sooner than the SOA says: after 1 s (so a secondary started before its
//! primary answers gets the zone 1 s later, not after 16 to 22 s).
//!
//! A NOTIFY is acted on within tens of milliseconds by both (for Knot,
//! see `knot_conf`).
//!
//! With a [`TsigKey`], the transfers (and their SOA queries) are signed
//! with it and unsigned or badly signed NOTIFYs are refused.
//!
//! Everything here blocks (sleeps between polls): from an async test, call
//! it from a blocking thread or a multi-thread runtime.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use super::dns::{query_msg, udp_raw_within};
use super::process::{Proc, free_port};

/// Longest wait for a started secondary to answer queries.
pub const START_LIMIT: Duration = Duration::from_secs(10);

/// How long [`Secondary::serial`] waits for a reply.
const QUERY_WAIT: Duration = Duration::from_millis(500);

/// Which server plays the secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// NLnet Labs' NSD, `nsd -d`.
    Nsd,
    /// CZ.NIC's Knot DNS, `knotd` (in the foreground without `-d`).
    Knot,
}

impl Kind {
    /// The name of its log file in the secondary's directory.
    fn log_name(self) -> &'static str {
        match self {
            Kind::Nsd => "nsd.log",
            Kind::Knot => "knot.log",
        }
    }

    /// The name of its configuration file in the secondary's directory.
    fn conf_name(self) -> &'static str {
        match self {
            Kind::Nsd => "nsd.conf",
            Kind::Knot => "knot.conf",
        }
    }
}

/// A TSIG key shared by the primary and a secondary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The key's name, a domain name (`xfr-key`; a final dot is optional).
    pub name: String,
    /// As both NSD and Knot spell it: `hmac-sha256`, `hmac-sha512`, ...
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

impl TsigKey {
    /// An `hmac-sha256` key named `name` with the base64 `secret`.
    pub fn hmac_sha256(name: &str, secret: &str) -> TsigKey {
        TsigKey {
            name: name.to_owned(),
            algorithm: "hmac-sha256".to_owned(),
            secret: secret.to_owned(),
        }
    }

    /// An `hmac-sha256` key named `name` with a random 32-byte secret.
    pub fn random(name: &str) -> TsigKey {
        let bytes: [u8; 32] = rand::random();
        TsigKey::hmac_sha256(name, &data_encoding::BASE64.encode(&bytes))
    }
}

/// NSD or Knot serving `zone` as a secondary; killed on drop.
pub struct Secondary {
    pub kind: Kind,
    /// Where it answers queries (and NOTIFY), UDP and TCP.
    pub addr: SocketAddr,
    /// The zone, without the final dot (`mesos`).
    pub zone: String,
    /// Declared before `dir`: stopped before its directory is removed.
    proc: Proc,
    /// Its configuration, state, zone data and log.
    pub dir: tempfile::TempDir,
}

impl Secondary {
    /// Start `kind` as a secondary of `zone` from `primary`: it asks for
    /// the zone by IXFR/AXFR from `primary` (signed with `key` if given),
    /// accepts NOTIFY from `primary`'s IP address, any port (signed with
    /// `key` if given), and answers queries for the zone on
    /// [`addr`](Self::addr). Returns once it answers (the zone itself may
    /// not be loaded yet: see [`wait_for_serial`](Self::wait_for_serial));
    /// panics if it does not within [`START_LIMIT`].
    pub fn start(kind: Kind, primary: SocketAddr, zone: &str, key: Option<&TsigKey>) -> Secondary {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let zone = zone.trim_end_matches('.').to_owned();
        let conf = match kind {
            Kind::Nsd => nsd_conf(dir.path(), addr, primary, &zone, key),
            Kind::Knot => knot_conf(dir.path(), addr, primary, &zone, key),
        };
        let conf_path = dir.path().join(kind.conf_name());
        std::fs::write(&conf_path, conf).unwrap();
        // Errors before the log file is open (a bad configuration) go to
        // stderr.
        let out = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut cmd = match kind {
            Kind::Nsd => {
                let mut c = Command::new("/usr/sbin/nsd");
                c.arg("-d").arg("-c").arg(&conf_path);
                c
            }
            Kind::Knot => {
                let mut c = Command::new("/usr/sbin/knotd");
                c.arg("-c").arg(&conf_path);
                c
            }
        };
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let proc = Proc::try_spawn(&mut cmd).unwrap_or_else(|e| {
            panic!("{kind:?}: cannot run {cmd:?} (scripts/test installs it): {e}")
        });
        let s = Secondary { kind, addr, zone, dir, proc };
        s.wait_up();
        s
    }

    /// Wait until it answers a query (any answer), or panic with its log.
    fn wait_up(&self) {
        let q = query_msg(&format!("{}.", self.zone), RecordType::SOA, None).to_vec().unwrap();
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.proc.try_wait() {
                panic!(
                    "{:?} secondary exited ({status}) while starting:\n{}",
                    self.kind,
                    self.report()
                );
            }
            if udp_raw_within(self.addr, &q, Duration::from_millis(100)).is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} secondary not answering on {} after {START_LIMIT:?}:\n{}",
                self.kind,
                self.addr,
                self.report()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The zone's SOA serial as it answers now; None if it has no zone
    /// (SERVFAIL), or does not answer within 500 ms.
    pub fn serial(&self) -> Option<u32> {
        let q = query_msg(&format!("{}.", self.zone), RecordType::SOA, None);
        let reply = udp_raw_within(self.addr, &q.to_vec().unwrap(), QUERY_WAIT)?;
        let m = Message::from_vec(&reply).ok()?;
        if m.metadata.response_code != ResponseCode::NoError {
            return None;
        }
        m.answers.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
    }

    /// Wait until [`serial`](Self::serial) is at least `serial` (a plain
    /// `>=`, not serial number arithmetic), or panic after `limit` with its
    /// log. How long it took.
    pub fn wait_for_serial(&self, serial: u32, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let now = self.serial();
            if now.is_some_and(|s| s >= serial) {
                return start.elapsed();
            }
            if let Some(status) = self.proc.try_wait() {
                panic!(
                    "{:?} secondary exited ({status}), serial {now:?}:\n{}",
                    self.kind,
                    self.report()
                );
            }
            assert!(
                start.elapsed() < limit,
                "{:?} secondary on {}: serial {now:?}, not {serial} after {limit:?}:\n{}",
                self.kind,
                self.addr,
                self.report()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its log so far (and whatever it wrote on stdout and stderr).
    pub fn log(&self) -> String {
        let mut log = read(&self.dir.path().join(self.kind.log_name()));
        let out = read(&self.dir.path().join("stderr.log"));
        if !out.trim().is_empty() {
            let _ = write!(log, "--- stdout/stderr ---\n{out}");
        }
        log
    }

    /// Its configuration file.
    pub fn config(&self) -> String {
        read(&self.config_path())
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join(self.kind.conf_name())
    }

    /// Configuration and log, for a panic message.
    fn report(&self) -> String {
        format!("--- {} ---\n{}--- log ---\n{}", self.kind.conf_name(), self.config(), self.log())
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        // A clean stop first (NSD's children go with it), then `Proc`'s
        // kill for whatever is left.
        if self.proc.try_wait().is_none() {
            self.proc.signal(libc::SIGTERM);
            let _ = self.proc.wait_for_exit(Duration::from_secs(2));
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The NSD 4.6 configuration: everything in `dir`, no database (the zone
/// is kept in memory, written to `<zone>.zone` at most hourly), no remote
/// control, one server process, only `addr`. A transfer is loaded at once
/// (`xfrd-reload-timeout: 0`, not once a second); a failed one is retried
/// after 1 s.
fn nsd_conf(
    dir: &Path,
    addr: SocketAddr,
    primary: SocketAddr,
    zone: &str,
    key: Option<&TsigKey>,
) -> String {
    let d = dir.display();
    let (ip, port) = (addr.ip(), addr.port());
    let (pip, pport) = (primary.ip(), primary.port());
    let key_block = key.map_or_else(String::new, |k| {
        format!(
            "key:\n    name: \"{}\"\n    algorithm: {}\n    secret: \"{}\"\n\n",
            k.name, k.algorithm, k.secret
        )
    });
    let kref = key.map_or("NOKEY", |k| k.name.as_str());
    format!(
        r#"server:
    ip-address: {ip}
    port: {port}
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    database: ""
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    zonelistfile: "{d}/zone.list"
    logfile: "{d}/nsd.log"
    server-count: 1
    verbosity: 2
    xfrd-reload-timeout: 0

remote-control:
    control-enable: no

{key_block}zone:
    name: "{zone}"
    zonefile: "{d}/{zone}.zone"
    request-xfr: {pip}@{pport} {kref}
    allow-notify: {pip} {kref}
    min-retry-time: 1
    max-retry-time: 1
"#
    )
}

/// The Knot 3.2 configuration: everything in `dir` (databases, control
/// socket, pid file), one thread of each kind, only `addr`; the zone in
/// memory and in the journal, never read from or written to a zone file.
/// A failed refresh is retried after 1 s.
///
/// `block-notify-after-transfer`: after each transfer Knot plans its own
/// (outgoing) NOTIFY event 1 s later, and its whole-second event times
/// then let a NOTIFY that comes in during that second wait for it: up to
/// 1 s more before the transfer. Without the outgoing NOTIFY (there is no
/// one to notify) every NOTIFY is acted on at once.
fn knot_conf(
    dir: &Path,
    addr: SocketAddr,
    primary: SocketAddr,
    zone: &str,
    key: Option<&TsigKey>,
) -> String {
    let d = dir.display();
    let (ip, port) = (addr.ip(), addr.port());
    let (pip, pport) = (primary.ip(), primary.port());
    let (key_block, key_ref) = key.map_or_else(
        || (String::new(), String::new()),
        |k| {
            (
                format!(
                    "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n\n",
                    k.name, k.algorithm, k.secret
                ),
                format!("    key: {}\n", k.name),
            )
        },
    );
    format!(
        r#"server:
    listen: {ip}@{port}
    rundir: {d}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

control:
    listen: {d}/knot.sock

database:
    storage: {d}

log:
  - target: {d}/knot.log
    any: debug

{key_block}remote:
  - id: primary
    address: {pip}@{pport}
    block-notify-after-transfer: on
{key_ref}
acl:
  - id: notify_from_primary
    address: {pip}
    action: notify
{key_ref}
zone:
  - domain: {zone}
    storage: {d}
    file: {zone}.zone
    master: primary
    acl: notify_from_primary
    zonefile-load: none
    zonefile-sync: -1
    journal-content: all
    retry-max-interval: 1
"#
    )
}
