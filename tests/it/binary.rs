//! The real `mesos-dns` binary, run as a child process: flags, exit codes,
//! error lines, `-dump`, a busy port, the README demo checked with `dig`,
//! and a clean exit on SIGTERM.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::json;

use crate::harness::*;

fn demo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo").join(file)
}

/// demo/config.json with `changes` applied.
fn demo_config(changes: serde_json::Value) -> serde_json::Value {
    let text = std::fs::read_to_string(demo("config.json")).unwrap();
    merged(serde_json::from_str(&text).unwrap(), &changes)
}

#[test]
fn version_flags_print_the_version_and_exit_0() {
    for flag in ["-version", "--version", "-version=true"] {
        let r = run(&[flag]);
        assert_eq!(r.code(), Some(0), "{flag}: {r:?}");
        assert_eq!(r.stdout.trim(), env!("CARGO_PKG_VERSION"), "{flag}: {r:?}");
        r.no_panic();
    }
}

#[test]
fn unknown_flag_is_exit_2_naming_the_flag() {
    for flag in ["-bogus", "--bogus=1", "stray"] {
        let r = run(&[flag]);
        assert_eq!(r.code(), Some(2), "{flag}: {r:?}");
        r.no_panic();
        let name = flag.trim_start_matches('-').split('=').next().unwrap();
        assert!(r.stderr.contains(name), "{flag}: {r:?}");
        assert!(r.stdout.is_empty(), "{flag}: {r:?}");
    }
}

#[test]
fn unknown_flag_is_one_error_line() {
    let r = run(&["-bogus"]);
    assert_eq!(r.code(), Some(2), "{r:?}");
    r.one_error_line();
}

#[test]
fn bad_configs_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        // (config text, what the error line must mention)
        (r#"{"masters": ["127.0.0.1:5050"], "#, &["JSON"]),
        (r#"{"masters": ["127.0.0.1:5050"], "IPSources": []}"#, &["IPSources"]),
        (r#"{"masters": ["1.2.3.4"]}"#, &["masters", "1.2.3.4"]),
        (r#"{"masters": ["127.0.0.1:5050"], "IPSources": ["bogus"]}"#, &["IPSources", "bogus"]),
        (r#"{"masters": ["127.0.0.1:5050"], "domain": "a..b"}"#, &["domain", "a..b"]),
        (r#"{"masters": ["127.0.0.1:5050"], "port": "x"}"#, &["port"]),
        (r#"{}"#, &["masters"]),
        (r#"[1, 2]"#, &["object"]),
        ("", &["JSON"]),
    ];
    for (i, (text, mentions)) in cases.iter().enumerate() {
        let path = write_file(dir.path(), &format!("bad{i}.json"), text);
        let r = run(&[&format!("-config={path}")]);
        assert_eq!(r.code(), Some(2), "{text}: {r:?}");
        let line = r.one_error_line();
        assert!(line.contains(&path), "{text}: the line names the file: {r:?}");
        for m in *mentions {
            assert!(line.contains(m), "{text}: the line names {m:?}: {r:?}");
        }
    }
}

#[test]
fn missing_config_file_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.json");
    let r = run(&["-config", path.to_str().unwrap()]);
    assert_eq!(r.code(), Some(2), "{r:?}");
    let line = r.one_error_line();
    assert!(line.contains("nope.json"), "{r:?}");
}

#[test]
fn dump_of_a_state_file_that_is_not_json_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = demo("config.json");
    for garbage in [&b"this is not json"[..], b"{\"frameworks\": [", b"[1,2,3]", b""] {
        std::fs::write(&state, garbage).unwrap();
        let r = run(&[
            &format!("-config={}", config.display()),
            &format!("-state-file={}", state.display()),
            "-dump",
        ]);
        assert_ne!(r.code(), Some(0), "{r:?}");
        assert!(r.code().is_some(), "killed by a signal: {r:?}");
        let line = r.one_error_line();
        assert!(line.contains("state.json"), "{r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
    }
    // A missing state file too.
    let r = run(&[
        &format!("-config={}", config.display()),
        &format!("-state-file={}", dir.path().join("absent.json").display()),
        "-dump",
    ]);
    assert_ne!(r.code(), Some(0), "{r:?}");
    r.one_error_line();
}

#[test]
fn dump_error_line_does_not_repeat_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, b"garbage").unwrap();
    let r = run(&[
        &format!("-config={}", demo("config.json").display()),
        &format!("-state-file={}", state.display()),
        "-dump",
    ]);
    let line = r.one_error_line();
    let cause = "expected value at line 1 column 1";
    assert_eq!(line.matches(cause).count(), 1, "{line}");
}

#[test]
fn dump_needs_a_state_file() {
    let r = run(&[&format!("-config={}", demo("config.json").display()), "-dump"]);
    assert_ne!(r.code(), Some(0), "{r:?}");
    let line = r.one_error_line();
    assert!(line.contains("state-file"), "{r:?}");
}

/// A JSON object with its keys in document order.
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = map.next_entry()? {
                    out.push(kv);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The member maps of `Records` in document order: section → names → values.
#[derive(Deserialize)]
struct DumpOrder {
    #[serde(rename = "Records")]
    records: BTreeMap<String, OrderedSection>,
}

struct OrderedSection(Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for OrderedSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let o = Ordered::deserialize(d)?;
        o.0.into_iter()
            .map(|(k, v)| {
                serde_json::from_value::<Vec<String>>(v)
                    .map(|v| (k, v))
                    .map_err(serde::de::Error::custom)
            })
            .collect::<Result<_, _>>()
            .map(OrderedSection)
    }
}

#[test]
fn dump_of_the_demo_is_sorted_json() {
    let r = run(&[
        &format!("-config={}", demo("config.json").display()),
        &format!("-state-file={}", demo("state.json").display()),
        "-dump",
    ]);
    assert_eq!(r.code(), Some(0), "{r:?}");
    r.no_panic();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    let mut search: Vec<&str> = doc["Records"]["As"]["search.marathon.mesos."]
        .as_array()
        .expect("As[search.marathon.mesos.]")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    search.sort_unstable();
    assert_eq!(search, ["10.0.1.11", "10.0.1.12", "10.0.1.13"]);
    assert_eq!(
        doc["Records"]["SRVs"]["_search._tcp.marathon.mesos."].as_array().map(Vec::len),
        Some(6)
    );
    assert_eq!(doc["Domain"], "mesos");
    assert_eq!(doc["TTL"], 60);
    assert_eq!(doc["RefreshSeconds"], 5);

    // Keys and values in sorted order, as printed.
    let top = serde_json::from_str::<Ordered>(&r.stdout).unwrap();
    let keys: Vec<&str> = top.0.iter().map(|(k, _)| k.as_str()).collect();
    for k in ["TTL", "Serial", "RefreshSeconds", "Mname", "Rname", "Domain"] {
        assert!(keys.contains(&k), "{k} missing: {keys:?}");
    }
    let order: DumpOrder = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(order.records.keys().collect::<Vec<_>>(), ["AAAAs", "As", "SRVs"]);
    for (section, entries) in &order.records {
        let names: Vec<&String> = entries.0.iter().map(|(k, _)| k).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{section}: names not sorted: {names:?}");
        for (name, values) in &entries.0 {
            assert!(!values.is_empty(), "{section} {name}: empty");
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "{section} {name}: values not sorted/unique: {values:?}"
            );
        }
    }
    assert!(order.records["As"].0.len() > 50);
}

#[test]
fn a_busy_port_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    // UDP taken; TCP taken (UDP free); the HTTP port taken.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let tcp_port = tcp.local_addr().unwrap().port();
    let http_port = http.local_addr().unwrap().port();
    for (what, dns, httpport, busy) in [
        ("udp", udp_port, free_port(), udp_port),
        ("tcp", tcp_port, free_port(), tcp_port),
        ("http", free_port(), http_port, http_port),
    ] {
        let config = write_file(
            dir.path(),
            &format!("busy-{what}.json"),
            &demo_config(json!({"port": dns, "httpport": httpport})).to_string(),
        );
        let r = run(&[
            &format!("-config={config}"),
            &format!("-state-file={}", demo("state.json").display()),
        ]);
        assert_eq!(r.code(), Some(1), "{what}: {r:?}");
        r.no_panic();
        let lines = r.error_lines();
        let last = lines.last().copied().unwrap_or_default();
        assert!(last.contains("cannot listen"), "{what}: {r:?}");
        assert!(last.contains(&busy.to_string()), "{what}: {r:?}");
    }
}

/// A started demo server.
struct Demo {
    server: Server,
    port: u16,
}

impl Demo {
    fn stderr(&self) -> String {
        self.server.log()
    }
}

/// Ask `name` over UDP; the reply, if any within 300 ms.
fn ask(port: u16, name: &str, rtype: RecordType) -> Option<Message> {
    let q = query_msg(name, rtype, None).to_vec().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Message::from_vec(&udp_raw_within(addr, &q, Duration::from_millis(300))?).ok()
}

/// Start the binary on the demo state, like the README, on a free port;
/// returns once it answers `search.marathon.mesos`.
fn start_demo() -> Demo {
    for _attempt in 0..5 {
        let port = free_port();
        let server = Server::start(
            &demo_config(json!({"port": port, "httpport": free_port()})),
            &[&format!("-state-file={}", demo("state.json").display())],
            &[],
        );
        let demo = Demo { server, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = demo.server.proc.try_wait() {
                let text = demo.stderr();
                if status.code() == Some(1) && text.contains("cannot listen") {
                    break; // lost a race for the port: try another
                }
                panic!("the demo exited with {status:?}:\n{text}");
            }
            if let Some(m) = ask(port, "search.marathon.mesos.", RecordType::A)
                && m.metadata.response_code == ResponseCode::NoError
                && m.answers.len() == 3
            {
                return demo;
            }
            assert!(Instant::now() < deadline, "the demo never answered:\n{}", demo.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("could not find a free port for the demo");
}

/// Run `dig` against the demo; its output lines (trimmed, non-empty).
fn dig(port: u16, args: &[&str]) -> Vec<String> {
    let out = Command::new("dig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+time=2", "+tries=1"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run dig (scripts/test installs it): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dig {args:?}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> =
        stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn readme_demo_answers_dig_and_exits_on_sigterm() {
    let _pass = exclusive::timing();
    let demo = start_demo();
    let port = demo.port;
    let a = ["10.0.1.11", "10.0.1.12", "10.0.1.13"];
    let srv = [
        "0 1 31000 search-t7pne-s0.marathon.slave.mesos.",
        "0 1 31001 search-t7pne-s0.marathon.slave.mesos.",
        "0 1 31010 search-fz41q-s1.marathon.slave.mesos.",
        "0 1 31011 search-fz41q-s1.marathon.slave.mesos.",
        "0 1 31020 search-gkcn1-s2.marathon.slave.mesos.",
        "0 1 31021 search-gkcn1-s2.marathon.slave.mesos.",
    ];
    for tcp in [false, true] {
        let mut args = vec![];
        if tcp {
            args.push("+tcp");
        }
        let with = |extra: &[&'static str]| {
            let mut v = args.clone();
            v.extend_from_slice(extra);
            v
        };
        assert_eq!(dig(port, &with(&["search.marathon.mesos", "+short"])), a, "tcp={tcp}");
        assert_eq!(
            dig(port, &with(&["_search._tcp.marathon.mesos", "SRV", "+short"])),
            srv,
            "tcp={tcp}"
        );
        // The SRV targets' addresses come along (README: +additional).
        let glue =
            dig(port, &with(&["_search._tcp.marathon.mesos", "SRV", "+noall", "+additional"]));
        let glue: Vec<String> = glue
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {} {}", f[0], f[3], f[4])
            })
            .collect();
        assert_eq!(
            glue,
            [
                "search-fz41q-s1.marathon.slave.mesos. A 10.0.1.12",
                "search-gkcn1-s2.marathon.slave.mesos. A 10.0.1.13",
                "search-t7pne-s0.marathon.slave.mesos. A 10.0.1.11",
            ],
            "tcp={tcp}"
        );
        // A name that does not exist: NXDOMAIN.
        let status = dig(port, &with(&["nothing-here.marathon.mesos"]));
        assert!(status.iter().any(|l| l.contains("status: NXDOMAIN")), "tcp={tcp}: {status:?}");
    }

    // SIGTERM: a clean exit, status 0, within 2 s.
    demo.server.proc.signal(libc::SIGTERM);
    let status = demo.server.proc.wait_for_exit(Duration::from_secs(2));
    let stderr = demo.stderr();
    let status = status.unwrap_or_else(|| panic!("still running 2 s after SIGTERM:\n{stderr}"));
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn sigint_also_exits_cleanly() {
    let _pass = exclusive::timing();
    let demo = start_demo();
    demo.server.proc.signal(libc::SIGINT);
    let status = demo.server.proc.wait_for_exit(Duration::from_secs(2));
    let stderr = demo.stderr();
    let status = status.unwrap_or_else(|| panic!("still running 2 s after SIGINT:\n{stderr}"));
    assert!(status.success(), "{status:?}\n{stderr}");
}

#[test]
fn an_unreadable_tls_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"masters": ["127.0.0.1:5050"], "listener": "127.0.0.1", "port": 0, "httpon": false,
            "mesosHTTPSOn": true, "caCertFile": "/nonexistent/ca.pem"}"#,
    )
    .unwrap();
    let r = run(&[&format!("-config={}", config.display())]);
    assert_eq!(r.code(), Some(2), "{r:?}");
    let lines = r.error_lines();
    assert_eq!(lines.len(), 1, "{r:?}");
    assert!(lines[0].contains("caCertFile") && lines[0].contains("/nonexistent/ca.pem"), "{r:?}");
}

/// A state of `n` running tasks `app-0`…, one per app, on one agent.
fn big_state(n: usize) -> serde_json::Value {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            json!({"id": format!("app-{i}.{i:08}"), "name": format!("app-{i}"),
                   "slave_id": "S1", "state": "TASK_RUNNING"})
        })
        .collect();
    json!({"leader": "master@10.0.0.1:5050",
           "slaves": [{"id": "S1", "hostname": "10.0.0.2", "pid": "slave(1)@10.0.0.2:5051"}],
           "frameworks": [{"name": "marathon", "tasks": tasks}]})
}

#[test]
fn dump_of_a_big_state_has_every_task_and_fails_on_an_unreadable_one() {
    // From 1,000 tasks on, the binary parses the task objects on a thread
    // of their own while generation reads them.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = format!("-config={}", demo("config.json").display());
    let state_flag = format!("-state-file={}", state.display());
    let n = 2500;
    std::fs::write(&state, big_state(n).to_string()).unwrap();
    let r = run(&[&config, &state_flag, "-dump"]);
    assert_eq!(r.code(), Some(0), "{r:?}");
    r.no_panic();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    let a = doc["Records"]["As"].as_object().expect("As");
    // `app-i.marathon.mesos.` and the task's own `app-i-<hash>-s1.…`.
    let apps = a.keys().filter(|k| k.starts_with("app-") && k.ends_with(".marathon.mesos."));
    assert_eq!(apps.count(), 2 * n);
    for i in [0, n / 2, n - 1] {
        assert_eq!(a[&format!("app-{i}.marathon.mesos.")], json!(["10.0.0.2"]), "task {i}");
    }

    // A task object serde refuses (a field given twice), near the end.
    let text = big_state(n).to_string().replacen(
        &format!(r#""id":"app-{}."#, n - 3),
        &format!(r#""id":"twice","id":"app-{}."#, n - 3),
        1,
    );
    std::fs::write(&state, text).unwrap();
    let r = run(&[&config, &state_flag, "-dump"]);
    assert_ne!(r.code(), Some(0), "{r:?}");
    let line = r.one_error_line();
    assert!(line.contains("duplicate field"), "{line}");
    assert!(r.stdout.is_empty(), "{r:?}");
}

/// At the default verbosity a newcomer learns, once each, where the server
/// listens, where its records come from, and when the first are in service;
/// nothing else is said on a clean start.
#[test]
fn a_default_start_says_where_it_listens_and_when_records_are_in_service() {
    let (dns, http) = (free_port(), free_port());
    let state = demo("state.json");
    let config = serde_json::json!({
        "listener": "127.0.0.1", "port": dns, "httpListener": "127.0.0.1", "httpport": http,
        "masters": ["127.0.0.1:5050"], "refreshSeconds": 1, "externalon": false,
    });
    let server = Server::start(&config, &[&format!("-state-file={}", state.display())], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.log().lines().count() < 2 {
        assert!(Instant::now() < deadline, "no start-up lines: {}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Three more refreshes (one a second): the first-records line is said once.
    std::thread::sleep(Duration::from_secs(3));
    let log = server.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    let listening = format!(
        "serving the domain mesos: DNS on 127.0.0.1:{dns} (UDP and TCP), HTTP on 127.0.0.1:{http}; records from the state file {}",
        state.display()
    );
    assert!(lines[0].contains(&listening), "{log}");
    assert!(
        lines[1].contains(
            "first records in service: 125 names (115 A, 0 AAAA, 197 SRV), from 127.0.0.1:5050"
        ),
        "{log}"
    );
}

/// What Zonemaster and dnsviz check, with the clients that noticed: a
/// refusal offers no recursion (no RA) while answers from the zone keep RA;
/// the DO bit is copied into the response (RFC 3225 §3); AXFR and IXFR are
/// refused at once, over TCP and UDP (RFC 5936 §2.2.1), not answered with
/// an empty NOERROR.
#[test]
fn refusals_offer_no_recursion_do_is_copied_and_transfers_are_refused() {
    let demo = start_demo();
    let port = demo.port;
    let flags = |lines: &[String]| -> String {
        lines.iter().find(|l| l.starts_with(";; flags:")).cloned().unwrap_or_default()
    };
    let status = |lines: &[String]| -> String {
        lines.iter().find(|l| l.contains("status:")).cloned().unwrap_or_default()
    };
    let refused = dig(port, &["xn--nameservertest.iis.se", "A", "+norec"]);
    assert!(status(&refused).contains("status: REFUSED"), "{refused:?}");
    assert!(flags(&refused).starts_with(";; flags: qr;"), "{refused:?}");
    let answered = dig(port, &["search.marathon.mesos", "A"]);
    assert!(flags(&answered).starts_with(";; flags: qr aa rd ra;"), "{answered:?}");

    let edns = |lines: &[String]| -> String {
        lines.iter().find(|l| l.starts_with("; EDNS:")).cloned().unwrap_or_default()
    };
    let with_do = dig(port, &["search.marathon.mesos", "A", "+dnssec"]);
    assert!(edns(&with_do).contains("flags: do;"), "{with_do:?}");
    let without = dig(port, &["search.marathon.mesos", "A"]);
    assert!(edns(&without).contains("flags:;"), "{without:?}");

    for (transport, tcp) in [("TCP", true), ("UDP", false)] {
        for qtype in ["AXFR", "IXFR=1"] {
            let started = Instant::now();
            let mut cmd = Command::new("kdig");
            cmd.args(["@127.0.0.1", "-p", &port.to_string(), "+time=2", "+retry=0"]);
            cmd.arg(if tcp { "+tcp" } else { "+notcp" }).args([qtype, "mesos"]);
            let out = cmd.output().unwrap_or_else(|e| {
                panic!("cannot run kdig (scripts/test installs knot-dnsutils): {e}")
            });
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(text.contains("REFUSED"), "{qtype} over {transport}: {text}");
            assert!(started.elapsed() < Duration::from_secs(1), "{qtype} over {transport}: slow");
        }
    }
}
