//! Record generation (docs/naming.md): a pure function from one Mesos state and
//! the config to a [`RecordSet`]. No I/O, clock or randomness; host names
//! that are not IP literals go through an injected [`HostResolver`], so tests
//! can use one that knows only `localhost`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};

use aws_lc_rs::digest;

use crate::addr::{Upid, parse_port, split_host_port_lenient};
use crate::config::{Config, IpSource};
use crate::labels::{LabelRule, is_publishable_raw_name};
use crate::proto::reverse_name;
use crate::records::{NameId, RecordSet, Value, canonical_ip};
use crate::state::{Agent, Framework, State, Status, Task};

/// A map keyed by strings from the state, hashed with foldhash (no need
/// for SipHash's flooding resistance in a map that lives for one refresh).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Resolves host names found in the state (agent and framework hosts,
/// masters given by name) and lists this host's addresses (for the
/// `SOAMname` record when listening on every interface).
pub trait HostResolver {
    /// Every address of `host`; empty when it does not resolve.
    fn lookup(&self, host: &str) -> Vec<IpAddr>;
    /// This host's interface addresses.
    fn interface_addrs(&self) -> Vec<IpAddr>;
}

/// The operating system's resolver (getaddrinfo) and interfaces.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup(&self, host: &str) -> Vec<IpAddr> {
        match (host, 0u16).to_socket_addrs() {
            Ok(addrs) => {
                let mut ips: Vec<IpAddr> = Vec::new();
                for ip in addrs.map(|a| a.ip()) {
                    if !ips.contains(&ip) {
                        ips.push(ip);
                    }
                }
                ips
            }
            Err(e) => {
                tracing::debug!("cannot resolve host {host:?}: {e}");
                Vec::new()
            }
        }
    }

    fn interface_addrs(&self) -> Vec<IpAddr> {
        match if_addrs::get_if_addrs() {
            Ok(ifs) => ifs.into_iter().map(|i| i.ip()).collect(),
            Err(e) => {
                tracing::warn!("cannot list network interfaces: {e}");
                Vec::new()
            }
        }
    }
}

/// A fixed table of host names, for tests and for reproducing the reference
/// records (captured with only `localhost` resolving, to 127.0.0.1).
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    /// Each known host name and the addresses it resolves to.
    pub hosts: HashMap<String, Vec<IpAddr>>,
    /// The addresses of this host's network interfaces.
    pub interfaces: Vec<IpAddr>,
}

impl StaticResolver {
    /// Knows only `localhost` → 127.0.0.1, and has no interfaces.
    pub fn localhost_only() -> Self {
        let mut hosts = HashMap::new();
        hosts.insert("localhost".to_owned(), vec![IpAddr::from([127, 0, 0, 1])]);
        StaticResolver { hosts, interfaces: Vec::new() }
    }
}

impl HostResolver for StaticResolver {
    fn lookup(&self, host: &str) -> Vec<IpAddr> {
        self.hosts.get(host).cloned().unwrap_or_default()
    }

    fn interface_addrs(&self) -> Vec<IpAddr> {
        self.interfaces.clone()
    }
}

/// Why a state produced no record set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    /// The state's `leader` is empty.
    #[error("the state names no leading master (empty \"leader\")")]
    NoLeader,
    /// The state's `leader`, which is not a master UPID.
    #[error("the state's leader {0:?} is not a master UPID (master@host:port)")]
    BadLeader(String),
    /// A task object could not be read.
    #[error(transparent)]
    Task(#[from] crate::state::TaskError),
}

/// Which records [`generate_parts`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// Each framework's `frag(name).D.` and `_framework._tcp` records.
    pub frameworks: bool,
    /// `slave.D.` and `_slave._tcp.D.`.
    pub agents: bool,
    /// `SOAMname`, the leader and the masters.
    pub masters: bool,
    /// Every running task's records, and the enumeration.
    pub tasks: bool,
}

impl Parts {
    /// Every record: what [`generate`] makes.
    pub const ALL: Parts = Parts { frameworks: true, agents: true, masters: true, tasks: true };
    /// Only the tasks' records.
    pub const TASKS: Parts = Parts { tasks: true, ..Parts::NONE };
    /// No record (to be combined: `Parts { agents: true, ..Parts::NONE }`).
    pub const NONE: Parts =
        Parts { frameworks: false, agents: false, masters: false, tasks: false };
}

/// Generate the record set for `state`. `masters` are the known masters in
/// order (the config's `masters`, or the members found in ZooKeeper).
pub fn generate(
    state: &State,
    config: &Config,
    masters: &[String],
    resolver: &dyn HostResolver,
) -> Result<RecordSet, GenerateError> {
    generate_parts(state, config, masters, resolver, Parts::ALL)
}

/// Generate the `parts` of the record set of `state`: a part of the
/// cluster (one task, one agent) gives exactly its share of the records
/// the whole cluster gives, which is how live records are kept up to date
/// one change at a time.
pub fn generate_parts(
    state: &State,
    config: &Config,
    masters: &[String],
    resolver: &dyn HostResolver,
    parts: Parts,
) -> Result<RecordSet, GenerateError> {
    let leader = if parts.masters {
        if state.leader.is_empty() {
            return Err(GenerateError::NoLeader);
        }
        match Upid::parse(&state.leader) {
            Some(Upid { host, port: Some(port), addr }) => Some(Leader { host, port, addr }),
            _ => return Err(GenerateError::BadLeader(state.leader.clone())),
        }
    } else {
        None
    };
    let mut g = Generator {
        rs: RecordSet::default(),
        domain: &config.domain,
        rule: LabelRule::from_enforce_rfc952(config.enforce_rfc952),
        hosts: Hosts { resolver, cache: RefCell::new(HashMap::new()) },
        buf: String::new(),
        batch: Vec::new(),
        ips: Vec::new(),
        ports: Vec::new(),
        ptr_on: config.ptr_on,
    };
    let tasks: usize = state.frameworks.iter().map(|f| f.tasks.len()).sum();
    // Typical: ~3 names and ~12 records a task (2 ports).
    g.rs.reserve(tasks * 3 + state.slaves.len(), tasks * 12);
    if parts.frameworks {
        g.frameworks(&state.frameworks);
    }
    let agents = g.agents(&state.slaves, parts.agents);
    if let Some(leader) = leader {
        g.listener(config.parsed.listener, &config.soa_mname);
        g.masters(masters, &leader);
    }
    if parts.tasks {
        g.tasks(&state.frameworks, &agents, config);
        // A task that could not be read fails the state, as a bad document
        // does: the last good records stay in service.
        state.tasks_parsed()?;
    }
    g.rs.seal();
    Ok(g.rs)
}

/// Host lookups, memoised for one generation.
struct Hosts<'a> {
    resolver: &'a dyn HostResolver,
    cache: RefCell<HashMap<String, Vec<IpAddr>>>,
}

impl Hosts<'_> {
    /// An IP literal is itself; a name is resolved. Empty host: nothing.
    fn ips(&self, host: &str) -> Vec<IpAddr> {
        if host.is_empty() {
            return Vec::new();
        }
        if let Some(ip) = parse_ip(host) {
            return vec![ip];
        }
        if let Some(ips) = self.cache.borrow().get(host) {
            return ips.clone();
        }
        let ips: Vec<IpAddr> = self.resolver.lookup(host).into_iter().map(canonical_ip).collect();
        self.cache.borrow_mut().insert(host.to_owned(), ips.clone());
        ips
    }
}

/// An IP literal as Go's `net.ParseIP` reads it (IPv4-mapped IPv6 is IPv4).
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(canonical_ip)
}

/// The leading master, from the state's `leader`.
struct Leader<'a> {
    host: &'a str,
    port: &'a str,
    /// `host:port` as written.
    addr: &'a str,
}

/// `h`: the first 5 characters of the z-base-32 encoding of SHA-1(task id).
#[derive(Debug, Clone, Copy)]
struct TaskHash([u8; 5]);

impl TaskHash {
    fn of(id: &str) -> Self {
        const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
        let digest = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, id.as_bytes());
        // Five characters take the first 25 bits, 5 bits each.
        let [a, b, c, d] = digest.as_ref().first_chunk().copied().unwrap_or_default();
        let bits = u32::from_be_bytes([a, b, c, d]);
        TaskHash(std::array::from_fn(|i| ZBASE32[((bits >> (27 - 5 * i)) & 31) as usize]))
    }

    fn as_str(&self) -> &str {
        // Every byte is from the ASCII alphabet above.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `s`: the last `-`-separated part of the agent id, lower case.
fn agent_id_tail(agent_id: &str) -> String {
    agent_id.rsplit('-').next().unwrap_or_default().to_lowercase()
}

/// The ports of a task's `resources.ports`, e.g. `"[31000-31002, 31005-31005]"`.
/// Lenient where the meaning is clear: `"[31000]"` is port 31000 and the
/// brackets may be missing. Ports above 65535 are skipped and reported.
/// They replace the contents of `ports`.
fn port_ranges(spec: &str, ports: &mut Vec<u16>, mut skip: impl FnMut(&str)) {
    let inner = spec.split_once('[').map_or(spec, |(_, r)| r);
    let inner = inner.split_once(']').map_or(inner, |(l, _)| l);
    ports.clear();
    for range in inner.split(',') {
        let range = range.trim();
        if range.is_empty() {
            continue;
        }
        let mut bounds = range.split('-');
        let lo = bounds.next().and_then(|s| s.trim().parse::<i64>().ok());
        let hi = match bounds.next() {
            Some(s) => s.trim().parse::<i64>().ok(),
            None => lo,
        };
        let (Some(lo), Some(hi)) = (lo, hi) else {
            skip(range);
            continue;
        };
        if lo < 0 || hi > i64::from(u16::MAX) {
            skip(range);
        }
        let (lo, hi) = (lo.max(0), hi.min(i64::from(u16::MAX)));
        ports.extend((lo..=hi).filter_map(|p| u16::try_from(p).ok()));
    }
}

struct Generator<'a> {
    rs: RecordSet,
    domain: &'a str,
    rule: LabelRule,
    hosts: Hosts<'a>,
    /// Reused to build names.
    buf: String,
    /// The records of the task being generated, added together
    /// ([`RecordSet::add_batch`]).
    batch: Vec<(Option<NameId>, Value)>,
    /// Reused for each task's IPs and ports.
    ips: Vec<IpAddr>,
    ports: Vec<u16>,
    /// `ptrOn`: reverse records for the tasks', masters' and our own
    /// addresses.
    ptr_on: bool,
}

impl<'a> Generator<'a> {
    fn fqdn(&self, name: &str) -> String {
        format!("{name}.{}.", self.domain)
    }

    /// `frag(name).D.` → scheduler IPs; `_framework._tcp.frag(name).D.` SRV.
    fn frameworks(&mut self, frameworks: &[Framework]) {
        for f in frameworks {
            let (host, port) = match Upid::parse(&f.pid) {
                Some(pid) => (pid.host, pid.port),
                None => (f.hostname.as_str(), None),
            };
            let ips = self.hosts.ips(host);
            if ips.is_empty() {
                continue;
            }
            let name = self.fqdn(&self.rule.fragment(&f.name));
            for ip in ips {
                self.rs.insert_ip(&name, ip);
            }
            match port.map(|p| (p, parse_port(p))) {
                Some((_, Some(port))) => {
                    self.rs.insert_srv(&format!("_framework._tcp.{name}"), &name, port);
                }
                Some((p, None)) => self.rs.skip(format_args!("framework {:?} port {p:?}", f.name)),
                None => {}
            }
        }
    }

    /// `slave.D.` → every agent IP; `_slave._tcp.D.` SRV at each agent port
    /// (when `emit`). Returns every known agent by id (those without
    /// addresses too).
    fn agents(&mut self, agents: &'a [Agent], emit: bool) -> FastMap<&'a str, AgentInfo> {
        let mut known = FastMap::with_capacity_and_hasher(agents.len(), Default::default());
        let name = self.fqdn("slave");
        let srv = self.fqdn("_slave._tcp");
        for agent in agents {
            let pid = Upid::parse(&agent.pid);
            // Without a usable pid, fall back to the agent's hostname.
            let host = pid.as_ref().map_or(agent.hostname.as_str(), |p| p.host);
            let ips = self.hosts.ips(host);
            if emit && !ips.is_empty() {
                for &ip in &ips {
                    self.rs.insert_ip(&name, ip);
                }
                match pid.and_then(|p| p.port).map(|p| (p, parse_port(p))) {
                    Some((_, Some(port))) => {
                        self.rs.insert_srv(&srv, &name, port);
                    }
                    Some((p, None)) => {
                        self.rs.skip(format_args!("agent {:?} port {p:?}", agent.id))
                    }
                    None => {}
                }
            } else if ips.is_empty() {
                tracing::debug!("agent {:?}: host {host:?} has no address", agent.id);
            }
            known.insert(agent.id.as_str(), AgentInfo { ips, tail: agent_id_tail(&agent.id) });
        }
        known
    }

    /// `SOAMname` → the listener address (every non-loopback interface
    /// address when listening on all of them).
    fn listener(&mut self, listener: IpAddr, soa_mname: &str) {
        let ips = match canonical_ip(listener) {
            ip if ip.is_unspecified() => self
                .hosts
                .resolver
                .interface_addrs()
                .into_iter()
                .filter(|ip| !ip.is_loopback())
                .collect(),
            ip => vec![ip],
        };
        for ip in ips {
            self.named_address(soa_mname, ip);
        }
    }

    /// An address record of `name` that also names it in reverse: with
    /// `ptrOn`, `ip`'s PTR record points back to `name` (masters and the
    /// server; tasks' go in their batch).
    fn named_address(&mut self, name: &str, ip: IpAddr) {
        self.rs.insert_ip(name, ip);
        if self.ptr_on {
            self.rs.insert_ptr(ip, name);
        }
    }

    /// `leader.D.`, `master.D.`, `masterN.D.`, `_leader._tcp/_udp.D.`.
    fn masters(&mut self, masters: &[String], leader: &Leader<'_>) {
        let leader_addr = leader.addr;
        let leader_ips = self.hosts.ips(leader.host);
        if leader_ips.is_empty() {
            tracing::warn!("leader {leader_addr:?} has no address");
        }
        let leader_name = self.fqdn("leader");
        let all = self.fqdn("master");
        for &ip in &leader_ips {
            self.rs.insert_ip(&leader_name, ip);
            self.rs.insert_ip(&all, ip);
        }
        match parse_port(leader.port) {
            Some(port) => {
                self.rs.insert_srv(&self.fqdn("_leader._tcp"), &leader_name, port);
                self.rs.insert_srv(&self.fqdn("_leader._udp"), &leader_name, port);
            }
            None => self.rs.skip(format_args!("leader {leader_addr:?} port")),
        }

        let mut index = 0;
        let mut leader_indexed = false;
        for master in masters {
            let Some((host, _)) = split_host_port_lenient(master) else {
                tracing::warn!("master {master:?} has no host:port");
                continue;
            };
            let ips = self.hosts.ips(host);
            if ips.is_empty() {
                tracing::warn!("master {master:?} has no address");
                continue;
            }
            let is_leader = master == leader_addr;
            if !is_leader {
                let mut added = false;
                for &ip in &ips {
                    added |= self.rs.insert_ip(&all, ip);
                }
                if !added {
                    continue; // a duplicate master
                }
            } else if leader_indexed {
                continue; // the leader twice in the list
            }
            let name = self.fqdn(&format!("master{index}"));
            for &ip in &ips {
                self.named_address(&name, ip);
            }
            index += 1;
            leader_indexed |= is_leader;
        }
        if !leader_indexed {
            if !masters.is_empty() {
                tracing::debug!("leader {leader_addr:?} is not in the masters list");
            }
            let name = self.fqdn(&format!("master{index}"));
            for &ip in &leader_ips {
                self.named_address(&name, ip);
            }
        }
    }

    /// Records of every running task on a known agent (with `healthyOnly`,
    /// whose health checks pass), and the enumeration.
    fn tasks(
        &mut self,
        frameworks: &'a [Framework],
        agents: &FastMap<&str, AgentInfo>,
        config: &Config,
    ) {
        let ip_sources = &config.ip_sources;
        for f in frameworks {
            self.rs.enumerate_framework(&f.name);
            let fname = self.rule.fragment(&f.name);
            // Tasks of one app share every name but the per-task ones.
            let mut apps: FastMap<(&'a str, bool), Vec<AppNames>> = FastMap::default();
            for task in f.tasks.iter() {
                if task.state != "TASK_RUNNING" {
                    continue;
                }
                let Some(agent) = agents.get(&*task.slave_id) else {
                    continue;
                };
                if config.healthy_only && !task.passes_health_checks() {
                    self.rs.unhealthy += 1;
                    continue;
                }
                let first_record = self.rs.record_count();
                let mut ips = std::mem::take(&mut self.ips);
                task_ips(task, ip_sources, &agent.ips, &mut ips);
                let ctx = TaskContext {
                    task,
                    fname: &fname,
                    hash: TaskHash::of(&task.id),
                    agent_tail: &agent.tail,
                    task_ips: &ips,
                    agent_ips: &agent.ips,
                };
                let has_discovery = !task.discovery.name.is_empty();
                let raw = if has_discovery { &task.discovery.name } else { &task.name };
                let app = apps.entry((raw, has_discovery)).or_insert_with(|| {
                    let label = self.rule.label(raw);
                    if !has_discovery {
                        return vec![AppNames::new(label)];
                    }
                    // The legacy raw name too, unless it is the label itself.
                    let raw = raw.to_lowercase();
                    if raw != label && is_publishable_raw_name(&raw) {
                        vec![AppNames::new(raw), AppNames::new(label)]
                    } else {
                        vec![AppNames::new(label)]
                    }
                });
                let mut canonical = None;
                for names in app {
                    canonical = self.task_records(&ctx, names);
                }
                // Each of the task's own addresses names the task: its
                // `c.f.D.` (of its label, not of a legacy raw name).
                if let Some(canonical) = canonical.filter(|_| self.ptr_on) {
                    for &ip in &ips {
                        let reverse = self.rs.name_id(&reverse_name(canonical_ip(ip)));
                        self.batch.push((reverse, Value::Ptr { target: canonical }));
                    }
                }
                self.ips = ips;
                self.rs.add_batch(&mut self.batch);
                self.rs.enumerate_task(&task.name, &task.id, first_record);
            }
        }
    }

    /// Intern the name made of `parts` (built in a reused buffer).
    fn name(&mut self, parts: &[&str]) -> Option<NameId> {
        self.buf.clear();
        for part in parts {
            self.buf.push_str(part);
        }
        self.rs.name_id(&self.buf)
    }

    /// The app name in `slot`, interned from `parts` on first use.
    fn app_name(&mut self, slot: &mut Option<Option<NameId>>, parts: &[&str]) -> Option<NameId> {
        *slot.get_or_insert_with(|| self.name(parts))
    }

    /// Queue an SRV record of the task being generated.
    fn queue_srv(&mut self, name: Option<NameId>, target: Option<NameId>, port: u16) {
        if let Some(value) = self.rs.srv(target, port) {
            self.batch.push((name, value));
        }
    }

    /// The records of one task under the label `app.t` (docs/naming.md, tasks).
    /// A task's records under one of its app's labels; returns its
    /// canonical name `c.f.D.`.
    fn task_records(
        &mut self,
        ctx: &TaskContext<'_, 'a>,
        app: &mut AppNames<'a>,
    ) -> Option<NameId> {
        let (t, f, d) = (app.t.as_str(), ctx.fname, self.domain);
        let (h, s) = (ctx.hash.as_str(), ctx.agent_tail);
        let task_names = [
            self.app_name(&mut app.task, &[t, ".", f, ".", d, "."]),
            self.name(&[t, "-", h, "-", s, ".", f, ".", d, "."]),
        ];
        let agent_names = [
            self.app_name(&mut app.agent, &[t, ".", f, ".slave.", d, "."]),
            self.name(&[t, "-", h, "-", s, ".", f, ".slave.", d, "."]),
        ];
        for &ip in ctx.task_ips {
            for name in task_names {
                self.batch.push((name, Value::from(ip)));
            }
        }
        for &ip in ctx.agent_ips {
            for name in agent_names {
                self.batch.push((name, Value::from(ip)));
            }
        }

        let has_discovery = !ctx.task.discovery.name.is_empty();
        let mut ports = std::mem::take(&mut self.ports);
        port_ranges(&ctx.task.resources.ports, &mut ports, |bad| {
            self.rs.skip(format_args!("task {:?} port range {bad:?}", ctx.task.id));
        });
        if !ports.is_empty() {
            // `.slave` names always; the plain ones only without DiscoveryInfo.
            let [tcp_agent, udp_agent, tcp, udp] = &mut app.srv;
            let mut srv_names = [
                self.app_name(tcp_agent, &["_", t, "._tcp.", f, ".slave.", d, "."]),
                self.app_name(udp_agent, &["_", t, "._udp.", f, ".slave.", d, "."]),
                None,
                None,
            ];
            let count = if has_discovery {
                2
            } else {
                srv_names[2] = self.app_name(tcp, &["_", t, "._tcp.", f, ".", d, "."]);
                srv_names[3] = self.app_name(udp, &["_", t, "._udp.", f, ".", d, "."]);
                4
            };
            for &port in &ports {
                for &name in srv_names.iter().take(count) {
                    self.queue_srv(name, agent_names[1], port);
                }
            }
        }
        self.ports = ports;
        if !has_discovery {
            return task_names[1];
        }

        let target = task_names[1];
        for dport in &ctx.task.discovery.ports.ports {
            let Some(port) = dport.number.and_then(|n| u16::try_from(n).ok()) else {
                self.rs
                    .skip(format_args!("task {:?} discovery port {:?}", ctx.task.id, dport.number));
                continue;
            };
            let key = (&*dport.protocol, &*dport.name);
            let at = match app.discovery.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    let names = self.discovery_names(t, f, key);
                    app.discovery.push((key, names));
                    app.discovery.len() - 1
                }
            };
            if let Some((_, names)) = app.discovery.get(at) {
                for &name in names {
                    self.queue_srv(name, target, port);
                }
            }
        }
        task_names[1]
    }

    /// The DiscoveryInfo SRV names of app `t` for a port of `protocol` and
    /// `name`, in the order records go to them: `_t._p.f.D.` for each
    /// protocol `p` (tcp and udp when none is given), then, for a named
    /// port, `_name._t._p.f.D.` for each.
    fn discovery_names(
        &mut self,
        t: &str,
        f: &str,
        (protocol, name): (&str, &str),
    ) -> Vec<Option<NameId>> {
        let d = self.domain;
        let proto = self.rule.label(protocol);
        let (custom, both) = (format!("_{proto}"), ["_tcp", "_udp"]);
        let protos: &[&str] = if proto.is_empty() { &both } else { &[custom.as_str()] };
        let port_name = self.rule.label(name);
        let mut names: Vec<Option<NameId>> =
            protos.iter().map(|p| self.name(&["_", t, ".", p, ".", f, ".", d, "."])).collect();
        if !port_name.is_empty() {
            for p in protos {
                names.push(self.name(&["_", &port_name, "._", t, ".", p, ".", f, ".", d, "."]));
            }
        }
        names
    }
}

/// A DiscoveryInfo port's protocol and name, as the state gives them.
type DiscoveryKey<'a> = (&'a str, &'a str);

/// The names every task of one app (same label `t`, same framework)
/// shares, interned when a task first needs them: `None` until then,
/// `Some(None)` for a name that cannot exist in DNS.
struct AppNames<'a> {
    t: String,
    /// `t.f.D.`
    task: Option<Option<NameId>>,
    /// `t.f.slave.D.`
    agent: Option<Option<NameId>>,
    /// `_t._tcp.f.slave.D.`, `_t._udp.f.slave.D.`, `_t._tcp.f.D.`, `_t._udp.f.D.`
    srv: [Option<Option<NameId>>; 4],
    /// The DiscoveryInfo SRV names for each (protocol, port name) of the
    /// state its tasks list ([`Generator::discovery_names`]).
    discovery: Vec<(DiscoveryKey<'a>, Vec<Option<NameId>>)>,
}

impl AppNames<'_> {
    fn new(t: String) -> Self {
        AppNames { t, task: None, agent: None, srv: [None; 4], discovery: Vec::new() }
    }
}

/// What an agent's tasks take from it.
struct AgentInfo {
    /// Its addresses (possibly none).
    ips: Vec<IpAddr>,
    /// `s`: the last `-`-separated part of its id, lower case.
    tail: String,
}

/// What every name of one task is built from.
struct TaskContext<'t, 'a> {
    task: &'a Task<'a>,
    fname: &'t str,
    hash: TaskHash,
    agent_tail: &'t str,
    task_ips: &'t [IpAddr],
    agent_ips: &'t [IpAddr],
}

/// The task's IPs: those of the first source in `IPSources` that yields
/// any. They replace the contents of `ips`.
fn task_ips(task: &Task, sources: &[IpSource], agent_ips: &[IpAddr], ips: &mut Vec<IpAddr>) {
    ips.clear();
    let status = newest_running_status(&task.statuses);
    for source in sources {
        match (source, status) {
            (IpSource::Host, _) => ips.extend_from_slice(agent_ips),
            (IpSource::Netinfo, Some(s)) => netinfo_ips(s, ips),
            (IpSource::Mesos, Some(s)) => {
                label_ips(s, "MesosContainerizer.NetworkSettings.IPAddress", ips)
            }
            (IpSource::Docker, Some(s)) => label_ips(s, "Docker.NetworkSettings.IPAddress", ips),
            (_, None) => {}
        }
        if !ips.is_empty() {
            return;
        }
    }
}

/// The TASK_RUNNING status with the highest timestamp (the first one on
/// ties; timestamps must be above -1, as in the original).
fn newest_running_status<'s, 'a>(statuses: &'s [Status<'a>]) -> Option<&'s Status<'a>> {
    let mut best: Option<&Status> = None;
    let mut ts = -1.0;
    for s in statuses {
        if s.state == "TASK_RUNNING" && s.timestamp > ts {
            ts = s.timestamp;
            best = Some(s);
        }
    }
    best
}

fn netinfo_ips(status: &Status, ips: &mut Vec<IpAddr>) {
    for ni in &status.container_status.network_infos {
        if ni.ip_addresses.is_empty() {
            ips.extend(parse_ip(&ni.ip_address));
        } else {
            ips.extend(ni.ip_addresses.iter().filter_map(|a| parse_ip(&a.ip_address)));
        }
    }
}

fn label_ips(status: &Status, key: &str, ips: &mut Vec<IpAddr>) {
    ips.extend(status.labels.iter().filter(|l| l.key == key).filter_map(|l| parse_ip(&l.value)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zbase32_vectors() {
        let h = |id| TaskHash::of(id).as_str().to_owned();
        assert_eq!(h("test"), "iffe9");
        assert_eq!(h(""), "5eh48");
        assert_eq!(h("a"), "o556e");
        assert_eq!(h("mesos-dns"), "xmfjk");
    }

    #[test]
    fn port_range_parsing() {
        let mut bad = Vec::new();
        let mut p = |s: &str| {
            let mut ports = vec![1];
            port_ranges(s, &mut ports, |b| bad.push(b.to_owned()));
            ports
        };
        assert_eq!(p("[31000-31002, 31005-31005]"), vec![31000, 31001, 31002, 31005]);
        assert_eq!(p("[31000]"), vec![31000]);
        assert_eq!(p("31000-31001"), vec![31000, 31001]);
        assert_eq!(p("[]"), Vec::<u16>::new());
        assert_eq!(p(""), Vec::<u16>::new());
        assert_eq!(p("[x-3, 5-4]"), Vec::<u16>::new());
        assert_eq!(p("[65535-70000]"), vec![65535]);
        assert_eq!(bad, vec!["x-3", "65535-70000"]);
    }

    #[test]
    fn tasks_of_one_app_share_its_names_and_only_its_names() {
        let task = |id: &str, name: &str, agent: &str, ports: &str| {
            serde_json::json!({"id": id, "name": name, "slave_id": agent,
                "state": "TASK_RUNNING", "resources": {"ports": ports}})
        };
        let mut discovered = task("web.3", "web", "S1", "[33000-33000]");
        discovered["discovery"] = serde_json::json!({"name": "web"});
        let doc = serde_json::json!({
            "leader": "master@10.0.0.1:5050",
            "frameworks": [
                {"name": "marathon", "tasks": [
                    task("web.1", "web", "S1", "[31000-31000]"),
                    task("web.2", "web", "S2", "[32000-32000]"),
                    discovered,
                ]},
                {"name": "other", "tasks": [task("web.4", "web", "S2", "[34000-34000]")]},
            ],
            "slaves": [
                {"id": "S1", "pid": "slave(1)@10.0.1.1:5051"},
                {"id": "S2", "pid": "slave(1)@10.0.1.2:5051"},
            ]
        });
        let state = State::from_slice(doc.to_string().as_bytes()).unwrap();
        let config = Config::default();
        let rs = generate(&state, &config, &[], &StaticResolver::default()).unwrap();
        let get = |name: &str| {
            let set = rs.get(name).unwrap_or_default();
            let mut v: Vec<String> = set.a.iter().map(ToString::to_string).collect();
            v.extend(set.srv.iter().map(ToString::to_string));
            v.sort();
            v
        };
        assert_eq!(get("web.marathon.mesos."), ["10.0.1.1", "10.0.1.2"]);
        assert_eq!(get("web.other.mesos."), ["10.0.1.2"]);
        // The task with DiscoveryInfo adds its port only to the `.slave` SRV.
        assert_eq!(get("_web._tcp.marathon.mesos.").len(), 2);
        assert_eq!(get("_web._tcp.marathon.slave.mesos.").len(), 3);
        assert_eq!(get("_web._tcp.other.mesos.").len(), 1);
        let hashed = format!("web-{}-s2.marathon.mesos.", TaskHash::of("web.2").as_str());
        assert_eq!(get(&hashed), ["10.0.1.2"]);
    }

    #[test]
    fn a_task_that_cannot_be_read_fails_generation() {
        // serde refuses a field given twice; from_vec leaves the error to
        // whoever reads the tasks.
        let doc =
            r#"{"leader":"master@10.0.0.1:5050","frameworks":[{"tasks":[{"id":"b","id":"c"}]}]}"#;
        let state = State::from_vec(doc.as_bytes().to_vec()).unwrap();
        let resolver = StaticResolver::localhost_only();
        let err = generate(&state, &Config::default(), &[], &resolver).unwrap_err();
        assert!(matches!(err, GenerateError::Task(_)), "{err}");
    }

    #[test]
    fn agent_tail() {
        assert_eq!(agent_id_tail("20150101-0000-S12"), "s12");
        assert_eq!(agent_id_tail("nodash"), "nodash");
        assert_eq!(agent_id_tail(""), "");
    }
}
