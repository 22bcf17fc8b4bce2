//! The HTTP API, `/metrics` and `/health`, against the
//! fixtures and a fake master, over a real HTTP connection.

use std::net::SocketAddr;

use crate::harness::*;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

struct Api {
    base: String,
    running: Running,
    master: FakeMaster,
    client: reqwest::Client,
}

impl Api {
    async fn start(extra: Value) -> Api {
        Self::start_with(extra, true).await
    }

    async fn start_with(extra: Value, serving: bool) -> Api {
        let master = if serving {
            FakeMaster::leading(FIXTURE).await
        } else {
            FakeMaster::start(Behaviour::Status(503)).await
        };
        let cfg =
            merged(json!({"httpon": true, "httpport": 0, "httpListener": "127.0.0.1"}), &extra);
        let running = start_with_masters(test_config(&[master.addr], cfg)).await;
        let base = format!("http://{}", running.http_addr.unwrap());
        Api { base, running, master, client: reqwest::Client::new() }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn text(&self, path: &str) -> String {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap().text().await.unwrap()
    }

    fn dns(&self) -> SocketAddr {
        self.running.dns_addr.unwrap()
    }
}

fn sorted(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> =
        v.as_array().unwrap().iter().map(|r| r[key].as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn version_and_config_without_secrets() {
    let api = Api::start(json!({
        "mesosAuthentication": "basic",
        "mesosCredentials": {"principal": "dns", "secret": "s3cr3t-value"},
    }))
    .await;
    let (status, v) = api.get("/v1/version").await;
    assert_eq!(status, 200);
    assert_eq!(v["Service"], "Mesos-DNS");
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    wait_loaded(&api.running).await;
    let (status, v) = api.get("/v1/config").await;
    assert_eq!(status, 200);
    assert_eq!(v["Domain"], "mesos");
    assert_eq!(v["MesosCredentials"]["Principal"], "dns");
    assert_eq!(v["MesosCredentials"]["Secret"], "***");
    assert!(v["SOASerial"].as_u64().unwrap() > 0);
    assert!(!v.to_string().contains("s3cr3t"), "{v}");
    api.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_services_and_ports() {
    let api = Api::start(json!({})).await;
    wait_loaded(&api.running).await;
    for path in [
        "/v1/hosts/liquor-store.marathon.mesos",
        "/v1/hosts/liquor-store.marathon.mesos.",
        "/v1/hosts/LIQUOR-STORE.Marathon.MESOS",
    ] {
        let (status, v) = api.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(sorted(&v, "ip"), vec!["1.2.3.11", "1.2.3.12"], "{path}");
        assert_eq!(v[0]["host"], "liquor-store.marathon.mesos.");
    }
    let (_, v) = api.get("/v1/hosts/toy-store.ipv6-framework.mesos").await;
    assert_eq!(sorted(&v, "ip"), vec!["12.0.1.2", "12.0.1.3", "fd01:b::1:8000:2"]);
    // No result: the original's shape, a single record of empty strings.
    let (status, v) = api.get("/v1/hosts/nothing.mesos").await;
    assert_eq!(status, 200);
    assert_eq!(v, json!([{"host": "", "ip": ""}]));

    let (_, v) = api.get("/v1/services/_liquor-store._tcp.marathon.slave.mesos.").await;
    assert_eq!(sorted(&v, "port"), vec!["31354", "31355", "31737", "31738"]);
    assert_eq!(v[0]["service"], "_liquor-store._tcp.marathon.slave.mesos.");
    let rec = v.as_array().unwrap().iter().find(|r| r["port"] == "31737").unwrap();
    assert_eq!(rec["host"], "liquor-store-zasmd-1.marathon.slave.mesos.");
    assert_eq!(rec["ip"], "1.2.3.12");
    let (_, v) = api.get("/v1/services/_nothing._tcp.mesos").await;
    assert_eq!(v, json!([{"service": "", "host": "", "ip": "", "port": ""}]));

    let (status, v) = api.get("/v1/hosts/liquor-store-zasmd-1.marathon.slave.mesos/ports").await;
    assert_eq!(status, 200);
    let services: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["service"].as_str().unwrap(), r["port"].as_str().unwrap()))
        .collect();
    assert_eq!(
        services,
        vec![
            "_liquor-store._tcp.marathon.slave.mesos. 31737",
            "_liquor-store._tcp.marathon.slave.mesos. 31738",
            "_liquor-store._udp.marathon.slave.mesos. 31737",
            "_liquor-store._udp.marathon.slave.mesos. 31738",
        ]
    );
    // DiscoveryInfo SRVs point at the canonical name without ".slave".
    let (_, v) = api.get("/v1/hosts/liquor-store-zasmd-1.marathon.mesos./ports").await;
    assert_eq!(sorted(&v, "port"), vec!["443", "443", "80", "80"]);
    let (_, v) = api.get("/v1/hosts/nothing.mesos/ports").await;
    assert_eq!(v, json!([{"service": "", "host": "", "port": ""}]));
    api.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn axfr_and_enumerate_match_the_records() {
    let api = Api::start(json!({})).await;
    wait_loaded(&api.running).await;
    let (status, v) = api.get("/v1/axfr").await;
    assert_eq!(status, 200);
    assert_eq!(v["Domain"], "mesos");
    assert_eq!(v["Mname"], "ns1.mesos.");
    assert_eq!(v["TTL"], 60);
    assert_eq!(v["Records"]["As"]["leader.mesos."], json!(["127.0.0.1"]));
    assert_eq!(v["Records"]["AAAAs"]["slave.mesos."], json!(["2001:db8::1"]));
    assert!(v["Records"]["SRVs"]["_slave._tcp.mesos."].is_array());
    let (status, v) = api.get("/v1/enumerate").await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        v["frameworks"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"marathon"), "{names:?}");
    api.running.shutdown().await;

    let api = Api::start(json!({"enumerationon": false})).await;
    assert_eq!(api.get("/v1/axfr").await.0, 404);
    assert_eq!(api.get("/v1/enumerate").await.0, 404);
    api.running.shutdown().await;
}

/// The big documents are streamed in pieces: what arrives is exactly the
/// document serialized whole from the records in service.
#[tokio::test(flavor = "multi_thread")]
async fn big_documents_arrive_whole_and_exact() {
    let master = FakeMaster::leading("dcos-ui-0.22.0-ovh-large.json").await;
    let config = test_config(&[master.addr], json!({"httpon": true, "httpport": 0}));
    let running = start_with_masters(config.clone()).await;
    wait_loaded(&running).await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", running.http_addr.unwrap());
    let get = |path: &str| client.get(format!("{base}{path}")).send();

    let axfr = get("/v1/axfr").await.unwrap().text().await.unwrap();
    let enumerate = get("/v1/enumerate").await.unwrap().text().await.unwrap();
    // Refreshes of the same state change only the serial.
    let serial: u32 = serde_json::from_str::<Value>(&axfr).unwrap()["Serial"]
        .as_u64()
        .and_then(|s| s.try_into().ok())
        .unwrap();
    let snapshot = running.current.load_full().unwrap();
    let want = mesos_dns::records::Axfr::new(snapshot.records.axfr_records(), &config, serial);
    assert!(axfr.len() > 64 * 1024, "{} bytes: not several pieces", axfr.len());
    assert!(axfr == serde_json::to_string(&want).unwrap(), "/v1/axfr differs");
    let want = serde_json::to_string(&snapshot.records.enumeration()).unwrap();
    assert!(enumerate.len() > 64 * 1024, "{} bytes: not several pieces", enumerate.len());
    assert!(enumerate == want, "/v1/enumerate differs");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_json_404_405_400() {
    let api = Api::start(json!({})).await;
    let (status, v) = api.get("/v2/nothing").await;
    assert_eq!(status, 404);
    assert!(v["error"].as_str().unwrap().contains("/v2/nothing"));
    let r = api.client.post(format!("{}/v1/version", api.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["code"], 405);
    let long = format!("/v1/hosts/{}.mesos", "a".repeat(64));
    assert_eq!(api.get(&long).await.0, 400);
    let long = format!("/v1/services/{}mesos", "abcdefghi.".repeat(26));
    assert_eq!(api.get(&long).await.0, 400);
    api.running.shutdown().await;
}

/// Every sample line of a Prometheus text exposition, checked strictly.
fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        if line.starts_with("# EOF") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
            let labels = &series[name_end + 1..series.len() - 1];
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(!v.contains('\n'));
            }
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        samples.push((series.to_owned(), v));
    }
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples.iter().find(|(s, _)| s == series).map_or(0.0, |(_, v)| *v)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_and_move_with_queries() {
    let api = Api::start(json!({})).await;
    wait_loaded(&api.running).await;
    let before = parse_exposition(&api.text("/metrics").await);
    let a_ok = r#"mesos_dns_dns_queries_total{transport="udp",qtype="A",rcode="NOERROR"}"#;
    let nx = r#"mesos_dns_dns_queries_total{transport="tcp",qtype="A",rcode="NXDOMAIN"}"#;
    for _ in 0..3 {
        udp(api.dns(), "leader.mesos.", RecordType::A, None);
    }
    tcp(api.dns(), "nothing.mesos.", RecordType::A);
    let text = api.text("/metrics").await;
    let after = parse_exposition(&text);
    assert_eq!(sample(&after, a_ok) - sample(&before, a_ok), 3.0, "{text}");
    assert_eq!(sample(&after, nx) - sample(&before, nx), 1.0, "{text}");
    assert!(sample(&after, "mesos_dns_dns_answer_duration_seconds_count") >= 4.0, "{text}");
    assert!(sample(&after, r#"mesos_dns_records{type="A"}"#) > 10.0);
    assert!(sample(&after, r#"mesos_dns_state_fetches_total{outcome="ok"}"#) >= 1.0);
    assert!(sample(&after, "mesos_dns_records_age_seconds") >= 0.0);
    let leader = format!(r#"mesos_dns_leader{{leader="{}"}}"#, api.master.addr);
    assert_eq!(sample(&after, &leader), 1.0, "{text}");
    let build = format!(r#"mesos_dns_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION"));
    assert_eq!(sample(&after, &build), 1.0);
    api.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_the_age_of_the_records() {
    let _pass = exclusive::timing();
    let api = Api::start_with(json!({"healthStaleRefreshes": 2}), false).await;
    let (status, v) = api.get("/health").await;
    assert_eq!(status, 503);
    assert!(v["reason"].as_str().unwrap().contains("no records"), "{v}");
    api.master.set(Behaviour::Serve(state_with_leader(FIXTURE, api.master.addr)));
    api.running.trigger.notify_one();
    wait_loaded(&api.running).await;
    let (status, v) = api.get("/healthz").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "ok");
    // The master goes away: after 2 refreshes (2 s) the records are stale.
    api.master.stop();
    let started = std::time::Instant::now();
    loop {
        let (status, v) = api.get("/health").await;
        if status == 503 {
            assert_eq!(v["status"], "stale");
            break;
        }
        assert!(started.elapsed().as_secs() < 10, "never went stale");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(started.elapsed().as_millis() >= 1500);
    // Still serving DNS all the while.
    let m = udp(api.dns(), "leader.mesos.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec![api.master.addr.ip().to_string()]);
    api.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_beyond_the_cap_wait_and_the_server_keeps_answering() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CAP: usize = 64;
    let api = Api::start(json!({"httpMaxConnections": CAP})).await;
    wait_loaded(&api.running).await;
    let addr = api.running.http_addr.unwrap();
    // Fill every slot with idle connections (a slow-loris client).
    let mut idle = Vec::new();
    for _ in 0..CAP {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // One more waits for a slot: it gets no answer while all are held.
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    extra.write_all(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let waited =
        tokio::time::timeout(std::time::Duration::from_millis(300), extra.read(&mut buf)).await;
    assert!(waited.is_err(), "a connection beyond the cap was served at once");
    // Freeing slots lets it through; DNS was never affected.
    idle.clear();
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let m = udp(api.dns(), "leader.mesos.", RecordType::A, None);
    assert_eq!(a_answers(&m), vec![api.master.addr.ip().to_string()]);
    api.running.shutdown().await;
}
