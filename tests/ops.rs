//! Operating the real binary: SIGUSR1 refreshes at once, SIGTERM stops
//! gracefully and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;

/// Kills the child if a test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigusr1_refreshes_now_and_sigterm_exits_zero() {
    let master = FakeMaster::start(Behaviour::Status(503)).await;
    master.set(Behaviour::Serve(state_with_leader("mesos-dns-fake.json", master.addr)));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let http_port =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &config,
        serde_json::json!({
            "masters": [master.addr.to_string()],
            "refreshSeconds": 3600,
            "listener": "127.0.0.1", "port": 0,
            "httpListener": "127.0.0.1", "httpport": http_port,
            "externalon": false,
        })
        .to_string(),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mesos-dns"))
        .arg(format!("-config={}", config.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    let health = format!("http://127.0.0.1:{http_port}/health");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = client.get(&health).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "server never became healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits = master.hits.load(Ordering::SeqCst);
    signal(&child.0, libc::SIGUSR1);
    wait_for(5, "a fetch after SIGUSR1", || master.hits.load(Ordering::SeqCst) > hits).await;

    let started = Instant::now();
    signal(&child.0, libc::SIGTERM);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "did not exit within 2 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
