//! A real ZooKeeper for the tests: Debian's `zookeeper` package started as a
//! standalone server on a free 127.0.0.1 port with its own data directory,
//! killed (with its JVM's process group) on drop or when the thread that
//! started it exits. Mesos masters are played by sequential `json.info_`
//! nodes holding real MasterInfo JSON, written with the same client crate
//! detection uses. A shared server serves the tests that do not stop it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use super::free_port;

pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

/// The class path: the package's configuration directory and jar (whose
/// manifest names its dependencies), plus a logging back-end so the
/// server's log lands in the test's directory.
fn class_path() -> String {
    let mut parts = vec!["/etc/zookeeper/conf".to_owned(), ZK_JAR.to_owned()];
    for jar in ["/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"] {
        if Path::new(jar).exists() {
            parts.push(jar.to_owned());
        }
    }
    parts.join(":")
}

/// Longest wait for a (re)started server to answer.
pub const START_LIMIT: Duration = Duration::from_secs(60);

/// A standalone ZooKeeper server, killed with its process group on drop.
pub struct ZkServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl ZkServer {
    /// Starts a server on a free port with a fresh data directory and waits
    /// until it serves.
    pub fn start() -> ZkServer {
        assert!(
            Path::new(ZK_JAR).exists(),
            "{ZK_JAR} is missing: install Debian's zookeeper package (scripts/test does)"
        );
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        // Short ticks make sessions short: the negotiated timeout is clamped
        // to maxSessionTimeout (2 s), so an outage expires sessions quickly.
        let cfg = format!(
            "tickTime=100\n\
             initLimit=10\n\
             syncLimit=5\n\
             dataDir={data}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\n\
             minSessionTimeout=200\n\
             maxSessionTimeout=2000\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=srvr,ruok\n",
            data = dir.path().join("data").display(),
        );
        std::fs::write(dir.path().join("zoo.cfg"), cfg).unwrap();
        let server = ZkServer { port, dir, child: Mutex::new(None) };
        server.launch();
        server
    }

    /// `127.0.0.1:port`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `zk://127.0.0.1:port<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("zk://{}{path}", self.connect_string())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("zookeeper.out")
    }

    /// Starts the JVM (on the configured port and data directory) and waits
    /// until `srvr` answers `Mode: standalone`. The server dies with the
    /// thread that calls this.
    pub fn launch(&self) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut cmd = Command::new("java");
        cmd.arg("-Xmx256m")
            .arg("-XX:+UseSerialGC")
            .arg("-XX:TieredStopAtLevel=1")
            .arg("-Dzookeeper.root.logger=INFO,CONSOLE")
            .arg(format!("-Dzookeeper.log.dir={}", self.dir.path().display()))
            .arg("-cp")
            .arg(class_path())
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(self.dir.path().join("zoo.cfg"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe. The server dies with the thread
        // that started it, so nothing outlives the test process even when a
        // test panics or the harness never runs Drop (a shared server).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("cannot run java (install default-jre-headless)");
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if self.srvr().is_some_and(|answer| answer.contains("Mode: standalone")) {
                return;
            }
            if let Some(status) =
                self.child.lock().unwrap().as_mut().and_then(|c| c.try_wait().unwrap())
            {
                panic!("ZooKeeper exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper not serving after {START_LIMIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The answer to the `srvr` four-letter command, if any.
    pub fn srvr(&self) -> Option<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"srvr").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the server (SIGKILL to its process group) and reaps it.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let pid = child.id() as libc::pid_t;
            // SAFETY: plain syscall; the group is the server's own (process_group(0)).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server shared by the tests that do not stop it (each uses paths of
/// its own). It is started from a thread that lives as long as the
/// process, so that the parent-death signal kills it when the test binary
/// exits.
pub fn shared() -> &'static ZkServer {
    static SHARED: OnceLock<ZkServer> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("zk-server-owner".into())
            .spawn(move || {
                tx.send(ZkServer::start()).ok();
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
        rx.recv().expect("the ZooKeeper server did not start")
    })
}

/// [`shared`] without blocking the test's runtime.
pub async fn shared_server() -> &'static ZkServer {
    tokio::task::spawn_blocking(shared).await.unwrap()
}

// ------------------------------------------------------- Mesos members

/// A client of the test playing Mesos masters.
pub async fn client(server: &ZkServer) -> zk::Client {
    client_with(server, None).await
}

/// A client with `digest` credentials (`user:password`).
pub async fn client_with(server: &ZkServer, auth: Option<&str>) -> zk::Client {
    let mut connector = zk::Client::connector().with_session_timeout(Duration::from_secs(2));
    if let Some(auth) = auth {
        connector = connector.with_auth("digest", auth.as_bytes());
    }
    tokio::time::timeout(Duration::from_secs(10), connector.connect(&server.connect_string()))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

/// A persistent node anyone may change.
pub fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// An ephemeral sequential node anyone may change (how Mesos joins).
pub fn ephemeral_seq() -> zk::CreateOptions<'static> {
    zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all())
}

/// A persistent sequential node anyone may change: a member that outlives
/// the session that wrote it (and ZooKeeper restarts). For the soak
/// benchmark.
#[allow(dead_code)]
pub fn persistent_seq() -> zk::CreateOptions<'static> {
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all())
}

/// MasterInfo JSON as Mesos writes it in `json.info_` nodes.
pub fn master_info(ip: &str, port: u16) -> Vec<u8> {
    let legacy_ip = match ip.parse::<std::net::Ipv4Addr>() {
        Ok(v4) => u32::from_le_bytes(v4.octets()),
        Err(_) => 0,
    };
    let host = format!("master-{}", ip.replace([':', '.'], "-"));
    serde_json::to_vec(&serde_json::json!({
        "address": {"hostname": host, "ip": ip, "port": port},
        "hostname": host,
        "id": format!("{}-{port}-0001", ip.replace(':', "-")),
        "ip": legacy_ip,
        "pid": format!("master@{ip}:{port}"),
        "port": port,
        "version": "1.11.0",
        "capabilities": [{"type": "AGENT_UPDATE"}],
        "domain": {"fault_domain": {"region": {"name": "r"}, "zone": {"name": "z"}}}
    }))
    .unwrap()
}

/// Adds an ephemeral member (`<path>/json.info_<seq>`) with `data`; returns
/// its path.
pub async fn add_member(client: &zk::Client, path: &str, data: &[u8]) -> String {
    add_member_with(client, path, data, &ephemeral_seq()).await
}

/// Adds a member created with `options`; returns its path.
pub async fn add_member_with(
    client: &zk::Client,
    path: &str,
    data: &[u8],
    options: &zk::CreateOptions<'_>,
) -> String {
    let prefix = format!("{path}/json.info_");
    let (_, seq) = client.create(&prefix, data, options).await.expect("create member");
    format!("{prefix}{seq}")
}

// ------------------------------------------------------- flaky link

/// What a [`FlakyProxy`] does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Connections are forwarded to the server.
    Up,
    /// Nothing listens on the port: connections are refused.
    Refused,
    /// Connections are accepted and never see a byte (a black hole).
    Blackholed,
}

/// A TCP proxy on a free 127.0.0.1 port in front of a server, whose link
/// can be cut: every change of [`Link`] closes every connection open
/// through it (forwarded or black-holed).
pub struct FlakyProxy {
    pub port: u16,
    link: tokio::sync::watch::Sender<Link>,
    /// Connections accepted (forwarded or black-holed).
    pub accepted: Arc<AtomicUsize>,
    /// Open connections closed by a change of the link.
    pub cut: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyProxy {
    /// Starts forwarding to `target`.
    pub async fn start(target: SocketAddr) -> FlakyProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (link, rx) = tokio::sync::watch::channel(Link::Up);
        let accepted = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicUsize::new(0));
        let counters = (Arc::clone(&accepted), Arc::clone(&cut));
        let task = tokio::spawn(run_proxy(listener, target, rx, counters));
        FlakyProxy { port, link, accepted, cut, task }
    }

    /// `127.0.0.1:port`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Changes the link (closing every open connection when it changes).
    pub fn set(&self, link: Link) {
        self.link.send_if_modified(|now| std::mem::replace(now, link) != link);
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_proxy(
    listener: tokio::net::TcpListener,
    target: SocketAddr,
    mut rx: tokio::sync::watch::Receiver<Link>,
    (accepted, cut): (Arc<AtomicUsize>, Arc<AtomicUsize>),
) {
    let port = listener.local_addr().unwrap().port();
    let mut listener = Some(listener);
    loop {
        let link = *rx.borrow_and_update();
        if link == Link::Refused {
            listener = None;
        } else if listener.is_none() {
            listener = Some(bind_again(port).await);
        }
        let mut forwarded = tokio::task::JoinSet::new();
        let mut held = Vec::new();
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                Ok((inbound, _)) = accept(listener.as_ref()) => {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    if link == Link::Up {
                        forwarded.spawn(forward(inbound, target));
                    } else {
                        held.push(inbound);
                    }
                }
            }
        }
        // The link changed: whatever is open through it is cut.
        while forwarded.try_join_next().is_some() {}
        cut.fetch_add(forwarded.len() + held.len(), Ordering::SeqCst);
        forwarded.shutdown().await;
        drop(held);
    }
}

/// Listens on `port` again (retrying briefly, should a client's ephemeral
/// port have taken it meanwhile).
async fn bind_again(port: u16) -> tokio::net::TcpListener {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return listener,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("proxy: cannot bind {port} yet: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("proxy: cannot listen on {port} again: {e}"),
        }
    }
}

async fn accept(
    listener: Option<&tokio::net::TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn forward(mut inbound: tokio::net::TcpStream, target: SocketAddr) {
    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}
