//! Leading-master detection (`mesos_dns::detect`) against a real ZooKeeper:
//! Debian's `zookeeper` package started as a standalone server on a free
//! 127.0.0.1 port with its own data directory (the harness in
//! `harness::zk`). Mesos masters are played by ephemeral sequential
//! `json.info_` nodes holding real MasterInfo JSON, written with the same
//! client crate detection uses.
//!
//! Also the `zk://` URL parser, which needs no server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::zk::{
    ZkServer, add_member, add_member_with, client, client_with, master_info, open, shared_server,
};
use crate::harness::{self, exclusive, free_port, logs};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use mesos_dns::config::{ZkUrl, ZkUrlError};
use mesos_dns::detect::{DetectStats, Masters, watch};
use tokio::sync::watch as channel;
use zookeeper_client as zk;

// ------------------------------------------------------------ harness

/// Every test body runs under this bound.
async fn bounded<F: std::future::Future<Output = ()>>(limit: Duration, body: F) {
    if tokio::time::timeout(limit, body).await.is_err() {
        panic!("test did not finish within {limit:?}");
    }
}

// ------------------------------------------------------- the watcher

/// A running `watch`, with every value it published recorded.
struct Detection {
    rx: channel::Receiver<Masters>,
    stats: Arc<DetectStats>,
    seen: Arc<Mutex<Vec<Masters>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Detection {
    fn start(url: &str) -> Detection {
        Detection::start_from(url, Masters::default())
    }

    /// Starts with `initial` in the channel, so that publishing
    /// `Masters::default()` is visible.
    fn start_from(url: &str, initial: Masters) -> Detection {
        let url = ZkUrl::parse(url).unwrap();
        let (tx, rx) = channel::channel(initial);
        let stats = Arc::new(DetectStats::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let watcher = tokio::spawn(watch(url, tx, Arc::clone(&stats)));
        let recorder = {
            let mut rx = rx.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let value = rx.borrow_and_update().clone();
                    seen.lock().unwrap().push(value);
                }
            })
        };
        Detection { rx, stats, seen, tasks: vec![watcher, recorder] }
    }

    /// Waits until the published masters satisfy `ok`; returns them.
    async fn until(&mut self, what: &str, ok: impl Fn(&Masters) -> bool) -> Masters {
        let limit = Duration::from_secs(10);
        let found = match tokio::time::timeout(limit, self.rx.wait_for(|m| ok(m))).await {
            Ok(Ok(m)) => Some(m.clone()),
            _ => None,
        };
        match found {
            Some(m) => m,
            None => panic!(
                "no {what} within {limit:?}; last published {:?}; stats {:?}",
                self.current(),
                self.stats
            ),
        }
    }

    /// Waits until these exact masters are published.
    async fn expect(&mut self, leader: Option<&str>, all: &[&str]) -> Masters {
        let want = Masters {
            leader: leader.map(str::to_owned),
            all: all.iter().map(|s| (*s).to_owned()).collect(),
        };
        self.until(&format!("{want:?}"), |m| *m == want).await
    }

    fn current(&self) -> Masters {
        self.rx.borrow().clone()
    }

    fn seen(&self) -> Vec<Masters> {
        self.seen.lock().unwrap().clone()
    }

    fn errors(&self) -> u64 {
        self.stats.errors.load(Ordering::Relaxed)
    }
}

impl Drop for Detection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

// ------------------------------------------------------------- tests

#[tokio::test]
async fn leader_then_more_members_then_failover() {
    let _pass = exclusive::timing();
    logs::init();
    bounded(Duration::from_secs(40), async {
        let server = shared_server().await;
        let members = client(server).await;
        let path = "/failover/mesos";
        members.mkdir(path, &open()).await.unwrap();
        let m1 = add_member(&members, path, &master_info("10.0.0.1", 5050)).await;

        let mut d = Detection::start(&server.url(path));
        d.expect(Some("10.0.0.1:5050"), &["10.0.0.1:5050"]).await;
        assert_eq!(d.stats.sessions.load(Ordering::Relaxed), 1);

        // A second master joins: the leader stays, the list grows.
        add_member(&members, path, &master_info("10.0.0.2", 5050)).await;
        d.expect(Some("10.0.0.1:5050"), &["10.0.0.1:5050", "10.0.0.2:5050"]).await;
        add_member(&members, path, &master_info("10.0.0.3", 5051)).await;
        d.expect(Some("10.0.0.1:5050"), &["10.0.0.1:5050", "10.0.0.2:5050", "10.0.0.3:5051"]).await;
        assert!(
            d.seen().iter().all(|m| m.leader.as_deref() == Some("10.0.0.1:5050")),
            "the leader changed while members joined: {:?}",
            d.seen()
        );
        assert_eq!(d.stats.leader_changes.load(Ordering::Relaxed), 1);

        // The leader's node goes: the next member leads, at once.
        let before = Instant::now();
        members.delete(&m1, None).await.unwrap();
        d.expect(Some("10.0.0.2:5050"), &["10.0.0.2:5050", "10.0.0.3:5051"]).await;
        let took = before.elapsed();
        assert!(took < Duration::from_secs(3), "failover took {took:?}");
        assert_eq!(d.stats.leader_changes.load(Ordering::Relaxed), 2);
        assert_eq!(d.errors(), 0);
    })
    .await;
}

#[tokio::test]
async fn leader_session_closing_hands_over() {
    let _pass = exclusive::timing();
    logs::init();
    bounded(Duration::from_secs(40), async {
        let server = shared_server().await;
        let admin = client(server).await;
        let path = "/session-close/mesos";
        admin.mkdir(path, &open()).await.unwrap();
        // Each master with its own session, as in a real cluster.
        let first = client(server).await;
        add_member(&first, path, &master_info("10.0.1.1", 5050)).await;
        let second = client(server).await;
        add_member(&second, path, &master_info("10.0.1.2", 5050)).await;

        let mut d = Detection::start(&server.url(path));
        d.expect(Some("10.0.1.1:5050"), &["10.0.1.1:5050", "10.0.1.2:5050"]).await;

        // The leading master's session ends: ZooKeeper drops its node.
        drop(first);
        d.expect(Some("10.0.1.2:5050"), &["10.0.1.2:5050"]).await;
        drop(second);
        d.expect(None, &[]).await;
    })
    .await;
}

#[tokio::test]
async fn garbage_and_non_members_are_skipped() {
    logs::init();
    bounded(Duration::from_secs(40), async {
        let server = shared_server().await;
        let members = client(server).await;
        let path = "/garbage/mesos";
        members.mkdir(path, &open()).await.unwrap();
        // Children that are not members, some with data that would parse.
        for (name, data) in [
            ("log_replicas", b"".to_vec()),
            ("info_0000000000", master_info("10.9.9.1", 5050)),
            ("json.info_x", master_info("10.9.9.2", 5050)),
            ("json.info", master_info("10.9.9.3", 5050)),
            ("xjson.info_0000000000", master_info("10.9.9.4", 5050)),
        ] {
            members.create(&format!("{path}/{name}"), &data, &open()).await.unwrap();
        }
        // The lowest member holds garbage; then one with no address at all.
        add_member(&members, path, b"\x08\x01garbage{").await;
        add_member(&members, path, br#"{"id":"no-address","version":"1.11.0"}"#).await;
        add_member(&members, path, &master_info("10.0.2.2", 5050)).await;
        add_member(&members, path, &master_info("10.0.2.3", 5050)).await;

        let mut d = Detection::start(&server.url(path));
        d.expect(Some("10.0.2.2:5050"), &["10.0.2.2:5050", "10.0.2.3:5050"]).await;
        assert!(d.errors() >= 2, "garbage not counted: {:?}", d.stats);
        assert!(d.seen().iter().all(|m| m.all.iter().all(|a| !a.starts_with("10.9.9."))));

        // A non-member joining changes nothing.
        members.create(&format!("{path}/log_replicas/x"), b"", &open()).await.unwrap();
        members.create(&format!("{path}/info_0000000001"), b"", &open()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(d.seen().len(), 1, "{:?}", d.seen());
    })
    .await;
}

#[tokio::test]
async fn empty_or_missing_path_means_no_leader() {
    logs::init();
    bounded(Duration::from_secs(40), async {
        let server = shared_server().await;
        let members = client(server).await;
        let stale = Masters { leader: Some("stale:1".into()), all: vec!["stale:1".into()] };

        // The path exists without members.
        let path = "/empty/mesos";
        members.mkdir(path, &open()).await.unwrap();
        members.create(&format!("{path}/log_replicas"), b"", &open()).await.unwrap();
        let mut d = Detection::start_from(&server.url(path), stale.clone());
        d.expect(None, &[]).await;
        assert!(d.errors() >= 1, "no leader not counted: {:?}", d.stats);
        let member = add_member(&members, path, &master_info("10.0.3.1", 5050)).await;
        d.expect(Some("10.0.3.1:5050"), &["10.0.3.1:5050"]).await;
        members.delete(&member, None).await.unwrap();
        d.expect(None, &[]).await;

        // The path does not exist yet: no leader until it is created and a
        // master joins.
        let path = "/missing/mesos";
        let mut d = Detection::start_from(&server.url(path), stale);
        d.expect(None, &[]).await;
        members.mkdir(path, &open()).await.unwrap();
        add_member(&members, path, &master_info("10.0.3.2", 5050)).await;
        d.expect(Some("10.0.3.2:5050"), &["10.0.3.2:5050"]).await;
    })
    .await;
}

#[tokio::test]
async fn hostname_fallback_and_ipv6_addresses() {
    logs::init();
    bounded(Duration::from_secs(40), async {
        let server = shared_server().await;
        let members = client(server).await;
        let path = "/addresses/mesos";
        members.mkdir(path, &open()).await.unwrap();
        add_member(&members, path, &master_info("fd00::1", 5050)).await;
        // An old master: no `address`, only `hostname` and `port`.
        let old = br#"{"hostname":"old-master.example","id":"o","ip":16777226,"pid":"master@10.0.0.1:5051","port":5051}"#;
        add_member(&members, path, old).await;
        add_member(&members, path, &master_info("10.0.4.3", 5050)).await;
        // A restarted master's stale node and its new one: listed once.
        add_member(&members, path, &master_info("fd00::1", 5050)).await;

        let mut d = Detection::start(&server.url(path));
        d.expect(
            Some("[fd00::1]:5050"),
            &["[fd00::1]:5050", "old-master.example:5051", "10.0.4.3:5050"],
        )
        .await;
        assert_eq!(d.errors(), 0);
    })
    .await;
}

#[tokio::test]
async fn digest_credentials_from_the_url() {
    logs::init();
    bounded(Duration::from_secs(40), async {
        let server = shared_server().await;
        // The path and its members are readable only by `mesos:s3cret`.
        let owner = client_with(server, Some("mesos:s3cret")).await;
        let locked = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
        owner.mkdir("/secured", &open()).await.unwrap();
        owner.create("/secured/mesos", b"", &locked).await.unwrap();
        let member = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::creator_all());
        add_member_with(&owner, "/secured/mesos", &master_info("10.0.5.1", 5050), &member).await;
        let (acl, _) = owner.get_acl("/secured/mesos").await.unwrap();
        assert_eq!(acl[0].scheme(), "digest", "{acl:?}");

        let connect = server.connect_string();
        let mut d = Detection::start(&format!("zk://mesos:s3cret@{connect}/secured/mesos"));
        d.expect(Some("10.0.5.1:5050"), &["10.0.5.1:5050"]).await;

        // Without credentials, or with wrong ones: refused, counted, and
        // nothing is published.
        let anonymous = Detection::start(&format!("zk://{connect}/secured/mesos"));
        let wrong = Detection::start(&format!("zk://mesos:wrong@{connect}/secured/mesos"));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for d in [&anonymous, &wrong] {
            assert_eq!(d.current(), Masters::default());
            assert!(d.seen().is_empty(), "{:?}", d.seen());
            assert!(d.errors() >= 2, "{:?}", d.stats);
        }
    })
    .await;
}

#[tokio::test]
async fn unreachable_zookeeper_publishes_nothing() {
    let _pass = exclusive::timing();
    logs::init();
    bounded(Duration::from_secs(20), async {
        let port = free_port(); // nothing listens there
        let known =
            Masters { leader: Some("10.0.6.1:5050".into()), all: vec!["10.0.6.1:5050".into()] };
        let d = Detection::start_from(&format!("zk://127.0.0.1:{port}/mesos"), known.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(d.current(), known);
        assert!(d.seen().is_empty(), "{:?}", d.seen());
        assert_eq!(d.stats.sessions.load(Ordering::Relaxed), 0);
        // Retries back off: a handful of attempts in 1.5 s, not hundreds.
        let errors = d.errors();
        assert!((2..=12).contains(&errors), "{errors} attempts");
    })
    .await;
}

#[tokio::test]
async fn zookeeper_restart_is_survived() {
    let _pass = exclusive::timing();
    logs::init();
    bounded(Duration::from_secs(50), async {
        // Started (and restarted) from the test's own thread, which outlives
        // the server: a pool thread could exit and take it down with it.
        let server = ZkServer::start();
        let path = "/restart/mesos";
        let members = client(&server).await;
        members.mkdir(path, &open()).await.unwrap();
        add_member(&members, path, &master_info("10.0.7.1", 5050)).await;
        let mut d = Detection::start(&server.url(path));
        d.expect(Some("10.0.7.1:5050"), &["10.0.7.1:5050"]).await;
        let seen_before = d.seen().len();
        let errors_before = d.errors();

        // Down for longer than the session timeout (2 s): the session is
        // lost, yet nothing is published while ZooKeeper is away.
        server.stop();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(d.current().leader.as_deref(), Some("10.0.7.1:5050"));
        assert_eq!(d.seen().len(), seen_before, "published while down: {:?}", d.seen());
        assert!(d.errors() > errors_before, "outage not counted: {:?}", d.stats);
        drop(members);

        // Back on the same port and data: detection resumes by itself. The
        // old master's session expires on the server; a new master joins.
        server.launch();
        let members = client(&server).await;
        add_member(&members, path, &master_info("10.0.7.2", 5050)).await;
        d.expect(Some("10.0.7.2:5050"), &["10.0.7.2:5050"]).await;
        assert!(d.stats.sessions.load(Ordering::Relaxed) >= 2, "{:?}", d.stats);
        assert!(
            d.seen().iter().all(|m| m.all.iter().all(|a| a.starts_with("10.0.7."))),
            "{:?}",
            d.seen()
        );
    })
    .await;
}

// ------------------------------------------------------------- URLs

#[test]
fn zk_urls_that_parse() {
    let u = ZkUrl::parse("zk://10.0.0.1:2181/mesos").unwrap();
    assert_eq!(u.servers, ["10.0.0.1:2181"]);
    assert_eq!(u.path, "/mesos");
    assert!(!u.has_credentials());
    assert_eq!(u.to_string(), "zk://10.0.0.1:2181/mesos");

    let u = ZkUrl::parse("zk://h1:2181,h2.example.com:2182,[fd00::3]:2183/a/b").unwrap();
    assert_eq!(u.servers, ["h1:2181", "h2.example.com:2182", "[fd00::3]:2183"]);
    assert_eq!(u.path, "/a/b");
    assert_eq!(u.connect_string(), "h1:2181,h2.example.com:2182,[fd00::3]:2183");

    // Default port, upper-case scheme, one trailing slash, the root.
    let u: ZkUrl = "ZK://zk-1,[::1]/mesos/".parse().unwrap();
    assert_eq!(u.servers, ["zk-1:2181", "[::1]:2181"]);
    assert_eq!(u.path, "/mesos");
    assert_eq!(ZkUrl::parse("zk://h:1/").unwrap().path, "/");

    let u = ZkUrl::parse("zk://mesos:s3cret@h1:2181,h2:2181/mesos").unwrap();
    assert_eq!(u.user(), Some("mesos"));
    assert!(u.has_credentials());
    assert_eq!(u.servers, ["h1:2181", "h2:2181"]);
    // Percent-escapes; ':' and '@' in the password.
    let u = ZkUrl::parse("zk://us%65r:p%40ss:w@rd@h:2181/mesos").unwrap();
    assert_eq!(u.user(), Some("user"));
    assert_eq!(u.servers, ["h:2181"]);
}

#[test]
fn zk_urls_that_do_not_parse() {
    let cases: &[(&str, &str)] = &[
        ("", "zk://"),
        ("http://h:2181/mesos", "zk://"),
        ("h:2181/mesos", "zk://"),
        ("zk:/h:2181/mesos", "zk://"),
        ("zk:///mesos", "no ZooKeeper server"),
        ("zk://u:p@/mesos", "no ZooKeeper server"),
        ("zk://h:2181", "missing path"),
        ("zk://h1,,h2/mesos", "empty server"),
        ("zk://h1:/mesos", "port"),
        ("zk://h1:0/mesos", "port"),
        ("zk://h1:65536/mesos", "port"),
        ("zk://h1:+80/mesos", "port"),
        ("zk://h1:x/mesos", "port"),
        ("zk://::1:2181/mesos", "brackets"),
        ("zk://[::1/mesos", "']'"),
        ("zk://[::1]x/mesos", "':port'"),
        ("zk://[10.0.0.1]:2181/mesos", "IPv6"),
        ("zk://h st:2181/mesos", "host"),
        ("zk://:2181/mesos", "empty host"),
        ("zk://h:2181//mesos", "empty node"),
        ("zk://h:2181/a/../b", "relative"),
        ("zk://h:2181/a/./b", "relative"),
        ("zk://h:2181/mesos?x=1", "query"),
        ("zk://h:2181/mes\u{1}os", "characters"),
        ("zk://user@h:2181/mesos", "user:password"),
        ("zk://:pw@h:2181/mesos", "user is empty"),
        ("zk://u:@h:2181/mesos", "password is empty"),
        ("zk://u:p%zz@h:2181/mesos", "percent-escape"),
        ("zk://u:p/w@h:2181/mesos", "%2F"),
    ];
    for (url, fragment) in cases {
        let e = ZkUrl::parse(url).expect_err(url);
        let msg = e.to_string();
        assert!(msg.contains(fragment), "{url}: {msg:?} lacks {fragment:?}");
        assert!(!msg.contains('\n'), "{url}: multi-line {msg:?}");
        assert_eq!(url.parse::<ZkUrl>().unwrap_err(), e);
    }
    assert!(matches!(ZkUrl::parse("zk://h:99999/x"), Err(ZkUrlError::Server { .. })));
}

#[test]
fn zk_url_never_shows_the_password() {
    let secret = "hunter2-zk";
    let u = ZkUrl::parse(&format!("zk://mesos:{secret}@h1:2181/mesos")).unwrap();
    for shown in [format!("{u:?}"), format!("{u:#?}"), u.to_string()] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(format!("{u:?}").contains("mesos"));
    assert_eq!(u.to_string(), "zk://mesos:***@h1:2181/mesos");
    // Nor do the errors of URLs with a password.
    for bad in [
        format!("zk://mesos:{secret}@h1:0/mesos"),
        format!("zk://mesos:{secret}@/mesos"),
        format!("zk://mesos:{secret}%zz@h1/mesos"),
        format!("zk://mesos:{secret}/x@h1/mesos"),
        format!("zk://mesos:{secret}@h1"),
    ] {
        let msg = ZkUrl::parse(&bad).unwrap_err().to_string();
        assert!(!msg.contains(secret) && !msg.contains("hunter"), "{bad}: {msg}");
    }
}

// ------------------------------------------- the binary, end to end

/// The binary on `config`, logging at debug level.
fn run_binary(config: &serde_json::Value) -> harness::Server {
    harness::Server::start(
        config,
        &["-v=1"],
        &[("RUST_LOG", "mesos_dns=debug,zookeeper_client=info")],
    )
}

/// The port of `_leader._tcp.mesos.` in the server's `/v1/axfr`.
async fn served_leader_port(http: u16) -> Option<String> {
    let body =
        reqwest::get(format!("http://127.0.0.1:{http}/v1/axfr")).await.ok()?.text().await.ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let target = v["Records"]["SRVs"]["_leader._tcp.mesos."][0].as_str()?;
    target.rsplit_once(':').map(|(_, p)| p.to_owned())
}

/// Two masters serving the fixture, A a member in ZooKeeper under
/// `path`, and the binary following it (its refresh period an hour).
struct TwoMasters {
    members: zk::Client,
    path: &'static str,
    a: harness::FakeMaster,
    b: harness::FakeMaster,
    node_a: String,
    http: u16,
    binary: harness::Server,
}

impl TwoMasters {
    async fn start(path: &'static str, api: Option<harness::Api>) -> TwoMasters {
        use harness::{FIXTURE, FakeMaster};
        let server = shared_server().await;
        let members = client(server).await;
        members.mkdir(path, &open()).await.unwrap();
        let a = FakeMaster::leading(FIXTURE).await;
        let b = FakeMaster::leading(FIXTURE).await;
        if let Some(api) = api {
            for m in [&a, &b] {
                m.state().set_api(api.clone());
            }
        }
        let node_a = add_member(&members, path, &master_info("127.0.0.1", a.addr.port())).await;
        let http = free_port();
        let binary = run_binary(&serde_json::json!({
            "zk": server.url(path),
            "refreshSeconds": 3600,
            "listener": "127.0.0.1", "port": free_port(),
            "httpListener": "127.0.0.1", "httpport": http,
            "externalon": false,
        }));
        TwoMasters { members, path, a, b, node_a, http, binary }
    }

    /// A steps down, B is elected.
    async fn fail_over(&self) {
        let b = master_info("127.0.0.1", self.b.addr.port());
        add_member(&self.members, self.path, &b).await;
        self.members.delete(&self.node_a, None).await.unwrap();
    }

    /// Wait until `cond` holds (asked every 20 ms), or fail after 20 s
    /// with `what` and the server's log.
    async fn until(&self, what: &str, mut cond: impl AsyncFnMut() -> bool) {
        let started = Instant::now();
        while !cond().await {
            let log = self.binary.log();
            assert!(started.elapsed() < Duration::from_secs(20), "never {what}:\n{log}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The port of the leader the server's records name.
    async fn leader_port(&self) -> Option<String> {
        served_leader_port(self.http).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_follows_the_leader_in_zookeeper() {
    logs::init();
    bounded(Duration::from_secs(60), async {
        let t = TwoMasters::start("/e2e/mesos", None).await;
        // master0 is the leader from ZooKeeper's member list.
        let a_port = t.a.addr.port().to_string();
        t.until("served A", async || t.leader_port().await.as_deref() == Some(&a_port)).await;
        // A steps down, B is elected: records follow at once, well before
        // the hour-long refresh period.
        t.fail_over().await;
        let b_port = t.b.addr.port().to_string();
        t.until("served B", async || t.leader_port().await.as_deref() == Some(&b_port)).await;
        assert!(t.b.hits.load(Ordering::SeqCst) >= 1);
    })
    .await;
}

/// Whether the server's `/v1/hosts/{name}` has an address for `name`.
async fn hosts(http: u16, name: &str) -> bool {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/v1/hosts/{name}")).await else {
        return false;
    };
    let v: serde_json::Value =
        serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default();
    v[0]["ip"].as_str().is_some_and(|ip| !ip.is_empty())
}

/// A running task `id` named `name` on the fixture's first agent, as
/// `TASK_ADDED` of the fixture's first framework.
fn task_added(master: &harness::FakeMaster, name: &str) -> serde_json::Value {
    let doc = master.state().document();
    let agent = doc["slaves"][0]["id"].as_str().unwrap();
    let task = serde_json::json!({"id": format!("{name}.1"), "name": name, "slave_id": agent,
        "state": "TASK_RUNNING", "resources": {"ports": "[31999-31999]"}});
    harness::operator::task_added(&task, &harness::operator::framework_id(&doc, 0))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_follows_the_leaders_event_stream_through_zookeeper() {
    logs::init();
    bounded(Duration::from_secs(60), async {
        let t = TwoMasters::start("/e2e-stream/mesos", Some(harness::Api::stream(15.0))).await;
        let (a, b, http) = (&t.a, &t.b, t.http);
        let subscribed = |m: &harness::FakeMaster| m.state().subscriptions.load(Ordering::SeqCst);
        let fname = harness::operator::framework_name(&a.state().document(), 0);
        let (from_a, from_b) = (format!("from-a.{fname}.mesos"), format!("from-b.{fname}.mesos"));
        // A leads: the server follows its stream, and A's events show.
        t.until("subscribed to A", async || subscribed(a) >= 1 && t.leader_port().await.is_some())
            .await;
        a.state().send(&task_added(a, "from-a"));
        t.until("served A's task", async || hosts(http, &from_a).await).await;
        // A steps down, B is elected: the server subscribes to B at once,
        // well before the hour-long refresh period.
        t.fail_over().await;
        let b_port = b.addr.port().to_string();
        t.until("followed B", async || {
            subscribed(b) >= 1 && t.leader_port().await.as_deref() == Some(&b_port)
        })
        .await;
        b.state().send(&task_added(b, "from-b"));
        t.until("served B's task", async || hosts(http, &from_b).await).await;
        // B's state does not hold A's task.
        assert!(!hosts(http, &from_a).await, "{}", t.binary.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_leader_within_zk_detection_timeout_is_a_clear_exit() {
    logs::init();
    bounded(Duration::from_secs(30), async {
        let server = shared_server().await;
        let members = client(server).await;
        let path = "/nobody/mesos";
        members.mkdir(path, &open()).await.unwrap();
        let binary = run_binary(&serde_json::json!({
            "zk": server.url(path),
            "zkDetectionTimeout": 1,
            "listener": "127.0.0.1", "port": free_port(),
            "httpon": false, "externalon": false,
        }));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = binary.proc.try_wait() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "did not give up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(!status.success());
        let stderr = binary.log();
        assert!(stderr.contains("zkDetectionTimeout"), "{stderr}");
    })
    .await;
}

// ------------------------------------------- ZooKeeper flapping

/// What process `pid` holds: open descriptors and threads.
#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    threads: usize,
}

fn usage(pid: u32) -> Usage {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Usage { fds, threads }
}

/// `(min, max)` of one figure of `samples`.
fn span(samples: &[Usage], figure: fn(&Usage) -> usize) -> (usize, usize) {
    let min = samples.iter().map(figure).min().unwrap_or(0);
    (min, samples.iter().map(figure).max().unwrap_or(0))
}

/// The CPU time process `pid` has used, user and system.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Past the command name (in parentheses) come fields 3 onwards; utime
    // and stime are fields 14 and 15.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or("", |(_, f)| f).split_whitespace().collect();
    let ticks: u64 =
        fields.get(11..13).map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100).max(1);
    Duration::from_millis(ticks * 1000 / hz)
}

/// One query over real UDP: the reply when it is NOERROR, else why not.
fn ask(dns: SocketAddr, name: &str, rtype: RecordType) -> Result<Message, String> {
    let q = harness::query_msg(name, rtype, None);
    match harness::udp_raw(dns, &q.to_vec().unwrap()).map(|r| Message::from_vec(&r)) {
        Some(Ok(m)) if m.metadata.response_code == ResponseCode::NoError => Ok(m),
        Some(Ok(m)) => Err(format!("{name} {rtype}: {}", m.metadata.response_code)),
        Some(Err(e)) => Err(format!("{name} {rtype}: undecodable reply: {e}")),
        None => Err(format!("{name} {rtype}: no reply within 1 s")),
    }
}

/// The port of the single SRV record answering `m`.
fn srv_port(m: &Message) -> Option<u16> {
    match m.answers.as_slice() {
        [r] => match &r.data {
            RData::SRV(srv) => Some(srv.port),
            _ => None,
        },
        _ => None,
    }
}

/// The leader's port in the records `dns` serves.
fn served_leader(dns: SocketAddr) -> Option<u16> {
    ask(dns, "_leader._tcp.mesos.", RecordType::SRV).ok().as_ref().and_then(srv_port)
}

/// What [`query_until`] saw.
#[derive(Debug, Default)]
struct Answers {
    answered: usize,
    failures: Vec<String>,
    /// The leader ports served, in order, without repeats.
    leaders: Vec<u16>,
}

/// Asks `dns` for a task's A records and the leader's SRV record, over
/// real UDP, until `stop`: each must be answered with those records.
fn query_until(dns: SocketAddr, stop: &AtomicBool) -> Answers {
    let mut seen = Answers::default();
    while !stop.load(Ordering::SeqCst) {
        match ask(dns, "liquor-store.marathon.mesos.", RecordType::A) {
            Ok(m) if harness::a_answers(&m) == ["1.2.3.11", "1.2.3.12"] => seen.answered += 1,
            Ok(m) => seen.failures.push(format!("task A records: {:?}", m.answers)),
            Err(e) => seen.failures.push(e),
        }
        match ask(dns, "_leader._tcp.mesos.", RecordType::SRV) {
            Ok(m) => match srv_port(&m) {
                Some(port) => {
                    seen.answered += 1;
                    if seen.leaders.last() != Some(&port) {
                        seen.leaders.push(port);
                    }
                }
                None => seen.failures.push(format!("leader SRV: {:?}", m.answers)),
            },
            Err(e) => seen.failures.push(e),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    seen
}

/// ZooKeeper flapping every second: a proxy between the binary and the real
/// server is up a second, then for a second cuts every connection and
/// refuses (or black-holes) new ones, eight times. DNS keeps answering from
/// the last good records, the server's descriptors and threads stay
/// bounded, it does not spin, and the leaders elected meanwhile (straight
/// on ZooKeeper, while the link is down) are followed, the last within a
/// few seconds of the link holding again.
#[tokio::test(flavor = "multi_thread")]
async fn the_binary_survives_zookeeper_flapping() {
    use harness::zk::{FlakyProxy, Link};
    use harness::{FIXTURE, FakeMaster};
    logs::init();
    let _pass = exclusive::load();
    bounded(Duration::from_secs(40), async {
        let server = shared_server().await;
        let proxy = FlakyProxy::start(server.connect_string().parse().unwrap()).await;
        let members = client(server).await; // straight to ZooKeeper
        let path = "/flapping/mesos";
        members.mkdir(path, &open()).await.unwrap();
        let mut masters = Vec::new();
        for _ in 0..3 {
            // Each claims to lead: only ZooKeeper can move the records on.
            let m = FakeMaster::leading(FIXTURE).await;
            masters.push(m);
        }
        let port = |i: usize| masters[i].addr.port();
        let info = |i: usize| master_info("127.0.0.1", port(i));
        let node_a = add_member(&members, path, &info(0)).await;

        let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let http = free_port();
        let binary = run_binary(&serde_json::json!({
            "zk": format!("zk://{}{path}", proxy.connect_string()),
            "refreshSeconds": 1,
            "listener": "127.0.0.1", "port": dns.port(),
            "httpListener": "127.0.0.1", "httpport": http,
            "externalon": false,
        }));
        let pid = binary.proc.id();
        let log = || binary.log();
        let started = Instant::now();
        while served_leader(dns) != Some(port(0)) {
            assert!(started.elapsed() < Duration::from_secs(15), "never served A:\n{}", log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // From now on: queries without a pause, and a sample every 100 ms.
        let stop = Arc::new(AtomicBool::new(false));
        let querier = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || query_until(dns, &stop))
        };
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sampler = {
            let samples = Arc::clone(&samples);
            tokio::spawn(async move {
                loop {
                    samples.lock().unwrap().push(usage(pid));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = samples.lock().unwrap().clone();

        // Eight flaps, down phases alternately refused and black-holed. B
        // is elected in the fourth down phase, C in the last.
        let (cpu_before, flapping) = (cpu_time(pid), Instant::now());
        let mut per_flap = Vec::new();
        let mut node_b = None;
        for flap in 0..8 {
            proxy.set(Link::Up);
            tokio::time::sleep(Duration::from_secs(1)).await;
            proxy.set(if flap % 2 == 0 { Link::Refused } else { Link::Blackholed });
            if flap == 3 {
                node_b = Some(add_member(&members, path, &info(1)).await);
                members.delete(&node_a, None).await.unwrap();
            }
            if let (7, Some(node_b)) = (flap, &node_b) {
                add_member(&members, path, &info(2)).await;
                members.delete(node_b, None).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            per_flap.push(usage(pid));
        }
        let cpu = (cpu_time(pid) - cpu_before).as_secs_f64() / flapping.elapsed().as_secs_f64();
        let (accepted, cut) =
            (proxy.accepted.load(Ordering::SeqCst), proxy.cut.load(Ordering::SeqCst));

        // The link holds: detection reconnects and C is served, within the
        // longest backoff (5 s) and a second.
        proxy.set(Link::Up);
        let healed = Instant::now();
        while served_leader(dns) != Some(port(2)) {
            let waited = healed.elapsed();
            assert!(waited < Duration::from_secs(6), "C not served after {waited:?}:\n{}", log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let followed = healed.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::SeqCst);
        sampler.abort();
        let answers = tokio::task::spawn_blocking(move || querier.join().unwrap()).await.unwrap();
        let samples = samples.lock().unwrap().clone();
        let after = &samples[samples.len().saturating_sub(5)..];
        let metrics = reqwest::get(format!("http://127.0.0.1:{http}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let zk_events: Vec<&str> =
            metrics.lines().filter(|l| l.starts_with("mesos_dns_zk_events_total")).collect();
        let fds = |s: &[Usage]| span(s, |u| u.fds);
        let threads = |s: &[Usage]| span(s, |u| u.threads);
        eprintln!(
            "flapping: {} answers, {} failures; leaders served {:?} (A {}, B {}, C {}); C \
             followed {followed:?} after the link held; proxy accepted {accepted}, cut {cut}; \
             fds before {:?}, overall {:?}, after {:?}; threads before {:?}, overall {:?}, \
             after {:?}; at each flap's end {per_flap:?}; CPU {:.0}% while flapping; \
             {zk_events:?}",
            answers.answered,
            answers.failures.len(),
            answers.leaders,
            port(0),
            port(1),
            port(2),
            fds(&before),
            fds(&samples),
            fds(after),
            threads(&before),
            threads(&samples),
            threads(after),
            cpu * 100.0,
        );

        assert!(binary.proc.try_wait().is_none(), "the server exited:\n{}", binary.log());
        assert!(answers.failures.is_empty(), "{:?}\n{}", answers.failures, log());
        assert!(answers.answered > 500, "only {} answers", answers.answered);
        // Leaders in election order, never back to an older one.
        let order = [port(0), port(1), port(2)];
        let rank = |p: &u16| order.iter().position(|o| o == p);
        assert!(
            answers.leaders.windows(2).all(|w| rank(&w[0]) < rank(&w[1])),
            "leaders served out of order: {:?}",
            answers.leaders
        );
        // The flaps reached the client: it connected again and was cut,
        // over and over.
        assert!(accepted >= 8 && cut >= 8, "accepted {accepted}, cut {cut}");
        let (all_fds, all_threads) = (fds(&samples), threads(&samples));
        assert!(all_fds.1 - all_fds.0 < 30, "descriptors {all_fds:?}");
        assert!(fds(after).1 <= fds(&before).1 + 5, "descriptors leak: {per_flap:?}");
        assert!(all_threads.1 - all_threads.0 <= 6, "threads {all_threads:?}");
        assert!(threads(after).1 <= threads(&before).1 + 4, "threads grow: {per_flap:?}");
        assert!(cpu < 0.5, "{:.0}% CPU while flapping: spinning?", cpu * 100.0);
    })
    .await;
}
