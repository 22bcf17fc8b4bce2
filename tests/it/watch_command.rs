//! `mesos-dns watch` end to end: the binary serving records that follow a
//! fake master's event stream, the watch command rendering an nginx
//! upstream from them, and a real nginx (Debian's) proxying to small HTTP
//! listeners of the test on 127.0.0.x that answer their own address.
//! Tasks start and stop; the server goes away and comes back; a template
//! error; `--once`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::operator::{self, framework_id};
use crate::harness::*;
use crate::stream::running_task;
use serde_json::{Value, json};

const TEMPLATE: &str = "upstream web {
{%- for s in service(\"_web._tcp.marathon.mesos\") %}
  server {{ s.ip }}:{{ s.port }};
{%- else %}
  server 127.0.0.1:1 down;
{%- endfor %}
}
";

/// An HTTP listener on `ip` answering every request with its address.
async fn upstream(ip: [u8; 4]) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = addr.ip().to_string();
    let app = axum::Router::new().fallback(move || {
        let name = name.clone();
        async move { name }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// nginx on its own prefix, proxying `127.0.0.1:port` to the upstream
/// block in `upstream.conf`.
struct Nginx {
    _proc: Proc,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// Debian's nginx: on the PATH, or in /usr/sbin (not on a user's PATH).
    fn binary() -> &'static str {
        let on_path = Command::new("nginx").arg("-v").stderr(Stdio::null()).status().is_ok();
        if on_path { "nginx" } else { "/usr/sbin/nginx" }
    }

    fn args(dir: &Path) -> Vec<String> {
        let d = dir.display();
        vec![
            "-p".into(),
            format!("{d}/"),
            "-c".into(),
            format!("{d}/nginx.conf"),
            "-e".into(),
            format!("{d}/error.log"),
        ]
    }

    fn start(dir: &Path) -> Nginx {
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
               fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
               include {d}/upstream.conf;\n\
               server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://web; proxy_next_upstream off; }} }}\n}}\n"
        );
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut cmd = Command::new(Self::binary());
        cmd.args(Self::args(dir)).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let proc = Proc::try_spawn(&mut cmd).unwrap_or_else(|e| {
            panic!("cannot run nginx ({e}): scripts/test installs Debian's nginx")
        });
        Nginx { _proc: proc, port, dir: dir.to_owned() }
    }

    fn reload_command(&self) -> String {
        format!("{} {} -s reload", Self::binary(), Self::args(&self.dir).join(" "))
    }

    /// The upstreams that answered `n` requests through nginx (an error
    /// status counts as `"502"` and so on).
    async fn answers(&self, n: usize) -> std::collections::BTreeSet<String> {
        let client = reqwest::Client::new();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..n {
            let r = client.get(format!("http://127.0.0.1:{}/", self.port)).send().await;
            seen.insert(match r {
                Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "down".into(),
            });
        }
        seen
    }

    /// Wait (10 s at most) until `n` requests reach exactly `want`.
    async fn until(&self, want: &[&str], what: &str) {
        let want: std::collections::BTreeSet<String> =
            want.iter().map(|s| (*s).to_owned()).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.answers(6).await;
            if seen == want {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: nginx reached {seen:?}, not {want:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The server binary following `master`, HTTP on `http`.
fn server(master: SocketAddr, http: u16) -> Server {
    let config = json!({
        "masters": [master.to_string()], "listener": "127.0.0.1", "port": free_port(),
        "httpListener": "127.0.0.1", "httpport": http, "externalon": false, "refreshSeconds": 60,
    });
    Server::start(&config, &[], &[])
}

/// An agent on a loopback address, added to `doc` and announced.
fn add_agent(master: &FakeMaster, doc: &mut Value, id: &str, ip: &str) {
    let agent = json!({"id": id, "hostname": ip, "pid": format!("slave(1)@{ip}:5051")});
    doc["slaves"].as_array_mut().unwrap().push(agent.clone());
    master.state().set_document(doc);
    master
        .state()
        .send(&json!({"type": "AGENT_ADDED", "agent_added": {"agent": operator::agent(&agent)}}));
}

/// Task `id` of app `web` (framework 3, marathon) starts on `agent`, port `port`.
fn start_task(master: &FakeMaster, doc: &mut Value, id: &str, agent: &str, port: u16) {
    let task = running_task(id, "web", agent, port);
    doc["frameworks"][3]["tasks"].as_array_mut().unwrap().push(task.clone());
    master.state().set_document(doc);
    master.state().send(&operator::task_added(&task, &framework_id(doc, 3)));
}

/// Task `id` stops.
fn kill_task(master: &FakeMaster, doc: &mut Value, id: &str, agent: &str) {
    let tasks = doc["frameworks"][3]["tasks"].as_array_mut().unwrap();
    tasks.retain(|t| t["id"] != id);
    master.state().set_document(doc);
    let fid = framework_id(doc, 3);
    master.state().send(&operator::task_updated(&fid, id, agent, "TASK_KILLED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_follows_the_tasks_through_mesos_dns_watch() {
    let master = FakeMaster::start(Behaviour::Status(503)).await;
    let mut doc = crate::stream::document(FIXTURE, &master);
    master.state().set_document(&doc);
    master.state().set_api(Api::stream(15.0));
    let http = free_port();
    let api = format!("http://127.0.0.1:{http}");
    let mut srv = server(master.addr, http);
    let (a, b) = (upstream([127, 0, 0, 2]).await, upstream([127, 0, 0, 3]).await);

    let dir = tempfile::tempdir().unwrap();
    let template = write_file(dir.path(), "upstream.conf.tmpl", TEMPLATE);
    let out = dir.path().join("upstream.conf");
    let out_s = out.display().to_string();
    // --once: the file at start (the server may still be loading).
    wait_for_ok(&api).await;
    let once = run(&["watch", "--api", &api, "--template", &template, "--out", &out_s, "--once"]);
    assert_eq!(once.code(), Some(0), "{}", once.stderr);
    assert!(std::fs::read_to_string(&out).unwrap().contains("127.0.0.1:1 down"));

    let nginx = Nginx::start(dir.path());
    nginx.until(&["502"], "no task yet").await;
    // The watch, its first server dead (failover).
    let reload = nginx.reload_command();
    let dead = format!("http://{}", dead_addr());
    let mut watch = command(&[
        "watch",
        "--api",
        &dead,
        "--api",
        &api,
        "--template",
        &template,
        "--out",
        &out_s,
        "--exec",
        &reload,
        "--wait",
        "50ms:500ms",
    ]);
    let log = std::fs::File::create(dir.path().join("watch.log")).unwrap();
    watch.stdout(Stdio::null()).stderr(log);
    let watch = Proc::spawn(&mut watch);

    add_agent(&master, &mut doc, "agent-lo-2", "127.0.0.2");
    add_agent(&master, &mut doc, "agent-lo-3", "127.0.0.3");
    let started = Instant::now();
    start_task(&master, &mut doc, "web.1", "agent-lo-2", a.port());
    nginx.until(&["127.0.0.2"], "one task").await;
    eprintln!("task started → nginx proxies to it: {:?}", started.elapsed());
    start_task(&master, &mut doc, "web.2", "agent-lo-3", b.port());
    nginx.until(&["127.0.0.2", "127.0.0.3"], "two tasks").await;

    // The server goes away: the file and nginx stay as they were.
    let before = std::fs::read_to_string(&out).unwrap();
    drop(srv);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        before,
        "the file changed while no server answered"
    );
    assert!(watch.try_wait().is_none(), "the watch gave up");
    nginx.until(&["127.0.0.2", "127.0.0.3"], "server away").await;
    // It comes back (indexes of its earlier run answer at once); a task stops.
    srv = server(master.addr, http);
    wait_for_ok(&api).await;
    kill_task(&master, &mut doc, "web.1", "agent-lo-2");
    nginx.until(&["127.0.0.3"], "a task stopped").await;
    kill_task(&master, &mut doc, "web.2", "agent-lo-3");
    nginx.until(&["502"], "no task left").await;
    let log = std::fs::read_to_string(dir.path().join("watch.log")).unwrap();
    assert!(log.contains("ran \"") && log.contains("-s reload"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    drop(srv);
}

/// Wait until the server's HTTP API answers a lookup.
async fn wait_for_ok(api: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = format!("{api}/v1/hosts/leader.mesos");
    while !reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "the server never answered {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn template_errors_and_dead_servers_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let api = format!("http://{}", dead_addr());
    let bad =
        write_file(dir.path(), "bad.tmpl", "ok\n{% for s in service(\"x\") %}\n{{ s.nope( }}\n");
    let r = run(&["watch", "--api", &api, "--template", &bad, "--out", &out, "--once"]);
    assert_eq!(r.code(), Some(1), "{}", r.stderr);
    let line = r.one_error_line();
    assert!(line.contains("bad.tmpl:3"), "{line}");
    let good = write_file(dir.path(), "good.tmpl", "{{ hosts(\"a.mesos\") | length }}\n");
    let r = run(&["watch", "--api", &api, "--template", &good, "--out", &out, "--once"]);
    assert_eq!(r.code(), Some(1), "{}", r.stderr);
    assert!(r.one_error_line().contains("no --api server answered"), "{}", r.stderr);
    assert!(!Path::new(&out).exists(), "an output written without an answer");
    let r = run(&["watch", "--api", &api, "--template", &good]);
    assert_eq!(r.code(), Some(2), "{}", r.stderr);
    let help = run(&["watch", "--help"]);
    assert_eq!(help.code(), Some(0));
    assert!(help.stdout.contains("nginx -s reload"), "{}", help.stdout);
}

/// Two templates in one process; each command runs only when its output's
/// bytes changed.
#[tokio::test(flavor = "multi_thread")]
async fn commands_run_only_when_their_output_changes() {
    let (master, running, _doc) =
        crate::stream::following(FIXTURE, Api::stream(15.0), json!({})).await;
    let api = format!("http://{}", running.http_addr.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let leader = write_file(
        dir.path(),
        "leader.tmpl",
        "{% for h in hosts(\"leader.mesos\") %}{{ h.ip }}\n{% endfor %}",
    );
    let count =
        write_file(dir.path(), "count.tmpl", "{{ service(\"_leader._tcp.mesos\") | length }}\n");
    let args = |http1: bool| {
        let mut a = vec!["watch".to_owned(), "--api".into(), api.clone()];
        for (t, name) in [(&leader, "leader"), (&count, "count")] {
            a.extend(["--template".into(), t.clone(), "--out".into(), format!("{d}/{name}.out")]);
            a.extend(["--exec".into(), format!("echo {name} >> {d}/ran")]);
        }
        a.push("--once".into());
        if http1 {
            a.push("--http1".into());
        }
        a
    };
    for (round, http1) in [(1, false), (2, true)] {
        let a = args(http1);
        let r = tokio::task::spawn_blocking(move || {
            run(&a.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        assert_eq!(r.code(), Some(0), "round {round}: {}", r.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("leader.out")).unwrap(),
        format!("{}\n", master.addr.ip())
    );
    assert_eq!(std::fs::read_to_string(dir.path().join("count.out")).unwrap(), "1\n");
    // The second run rendered the same bytes: no command ran again.
    assert_eq!(std::fs::read_to_string(dir.path().join("ran")).unwrap(), "leader\ncount\n");
    running.shutdown().await;
}
