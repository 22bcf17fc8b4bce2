//! Blocking queries against the running server, its records following a
//! fake master's event stream: a held lookup returns when its answer
//! changes and not for changes elsewhere; `wait` expiry; indexes from the
//! future or an earlier run; a thousand held at once; a client that goes
//! away frees its watch.

use std::time::{Duration, Instant};

use crate::harness::operator::{self, framework_id};
use crate::harness::*;
use crate::stream::{following, running_task};
use serde_json::{Value, json};

/// One answer of the HTTP API: status, index, body.
struct Answer {
    status: u16,
    index: u64,
    body: Value,
}

async fn get(client: &reqwest::Client, url: String) -> Answer {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let index = r
        .headers()
        .get("x-mesos-dns-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    Answer { status, index, body }
}

/// A started task of framework 3 (marathon) on agent 0, as an event.
fn started(doc: &Value, id: &str, name: &str, port: u16) -> Value {
    let agent = doc["slaves"][0]["id"].as_str().unwrap();
    operator::task_added(&running_task(id, name, agent, port), &framework_id(doc, 3))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lookup_returns_when_its_answer_changes_and_only_then() {
    let (master, running, doc) = following(FIXTURE, Api::stream(15.0), json!({})).await;
    let base = format!("http://{}", running.http_addr.unwrap());
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{base}{path}");

    let first = get(&client, url("/v1/hosts/web.marathon.mesos")).await;
    assert_eq!(first.status, 200);
    assert!(first.index > 0, "no index");
    assert_eq!(first.body, json!([{"host": "", "ip": ""}]), "the original's empty shape");
    // The same answer asked again keeps its index.
    assert_eq!(get(&client, url("/v1/hosts/web.marathon.mesos")).await.index, first.index);

    let held = {
        let (client, u) =
            (client.clone(), url(&format!("/v1/hosts/web.marathon.mesos?index={}", first.index)));
        tokio::spawn(async move {
            let a = get(&client, u).await;
            (a, Instant::now())
        })
    };
    let services = {
        let (client, u) = (
            client.clone(),
            url(&format!("/v1/services/_web._tcp.marathon.mesos?index={}", first.index)),
        );
        tokio::spawn(async move { get(&client, u).await })
    };
    // Changes elsewhere do not wake it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    master.state().send(&started(&doc, "other.1", "other", 31001));
    wait_for(5, "the other task", || {
        running.current.load().as_ref().is_some_and(|s| s.get("other.marathon.mesos.").is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "woken by a change elsewhere");
    let other = get(&client, url("/v1/hosts/other.marathon.mesos")).await;
    assert!(other.index > first.index, "the index grows with the records");

    // Its own change does, at once.
    let sent = Instant::now();
    master.state().send(&started(&doc, "web.1", "web", 31002));
    let (answer, at) = tokio::time::timeout(Duration::from_secs(1), held).await.unwrap().unwrap();
    eprintln!("held lookup answered {:?} after its change", at - sent);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!([{"host": "web.marathon.mesos.", "ip": "1.2.3.10"}]));
    assert!(answer.index > other.index, "{} after {}", answer.index, other.index);
    let services = tokio::time::timeout(Duration::from_secs(1), services).await.unwrap().unwrap();
    assert_eq!(services.body[0]["port"], "31002", "{}", services.body);

    // The ports of the task's SRV target, held, wake when it stops.
    let target = services.body[0]["host"].as_str().unwrap().to_owned();
    let ports = get(&client, url(&format!("/v1/hosts/{target}/ports"))).await;
    assert_eq!(ports.body[0]["port"], "31002", "{}", ports.body);
    let held = {
        let (client, u) =
            (client.clone(), url(&format!("/v1/hosts/{target}/ports?index={}", ports.index)));
        tokio::spawn(async move { get(&client, u).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let agent = doc["slaves"][0]["id"].as_str().unwrap();
    master.state().send(&operator::task_updated(
        &framework_id(&doc, 3),
        "web.1",
        agent,
        "TASK_KILLED",
    ));
    let gone = tokio::time::timeout(Duration::from_secs(1), held).await.unwrap().unwrap();
    assert_eq!(gone.body, json!([{"service": "", "host": "", "port": ""}]));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_expires_and_odd_indexes_answer_at_once() {
    let (_master, running, _doc) = following(FIXTURE, Api::stream(15.0), json!({})).await;
    let base = format!("http://{}", running.http_addr.unwrap());
    let client = reqwest::Client::new();
    let path = "/v1/hosts/leader.mesos";
    let now = get(&client, format!("{base}{path}")).await;

    let asked = Instant::now();
    let a = get(&client, format!("{base}{path}?index={}&wait=300ms", now.index)).await;
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!((a.index, &a.body), (now.index, &now.body));

    // From the future, from an earlier run, or zero: at once.
    for index in [now.index + 1_000_000, 1_000, 0] {
        let asked = Instant::now();
        let a = get(&client, format!("{base}{path}?index={index}&wait=10s")).await;
        assert!(asked.elapsed() < Duration::from_secs(2), "index {index} was held");
        assert_eq!(a.index, now.index);
    }
    // Bad parameters: 400.
    assert_eq!(get(&client, format!("{base}{path}?index=soon")).await.status, 400);
    assert_eq!(get(&client, format!("{base}{path}?index=1&wait=5d")).await.status, 400);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_held_lookups_and_clients_that_go_away() {
    const HELD: usize = 1000;
    let (master, running, doc) = following(FIXTURE, Api::stream(15.0), json!({})).await;
    let base = format!("http://{}", running.http_addr.unwrap());
    let client = reqwest::Client::new();
    let index = get(&client, format!("{base}/v1/hosts/leader.mesos")).await.index;
    let mut held = Vec::new();
    for i in 0..HELD {
        let (client, u) =
            (client.clone(), format!("{base}/v1/hosts/app-{i}.marathon.mesos?index={index}"));
        held.push(tokio::spawn(async move { get(&client, u).await }));
    }
    wait_metrics(&running, 10, &format!("mesos_dns_watched_names {HELD}.0\n")).await;

    // Ten of them start: those ten answer, the others stay held.
    for i in 0..10 {
        master.state().send(&started(
            &doc,
            &format!("app-{i}.1"),
            &format!("app-{i}"),
            32000 + i as u16,
        ));
    }
    for h in held.drain(..10) {
        let a = tokio::time::timeout(Duration::from_secs(2), h).await.unwrap().unwrap();
        assert_eq!(a.body[0]["ip"], "1.2.3.10", "{}", a.body);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(held.iter().all(|h| !h.is_finished()), "a lookup woke for another name");
    wait_metrics(&running, 5, &format!("mesos_dns_watched_names {}.0\n", HELD - 10)).await;

    // The clients go away: their watches are freed.
    for h in &held {
        h.abort();
    }
    drop(held);
    drop(client);
    wait_metrics(&running, 10, "mesos_dns_watched_names 0.0\n").await;
    running.shutdown().await;
}
