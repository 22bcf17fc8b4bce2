//! Operating the real binary: SIGUSR1 refreshes at once, SIGTERM stops
//! gracefully and exits 0.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigusr1_refreshes_now_and_sigterm_exits_zero() {
    let _pass = exclusive::timing();
    let master = FakeMaster::leading(FIXTURE).await;
    let http_port = free_port();
    let config = serde_json::json!({
        "masters": [master.addr.to_string()],
        "refreshSeconds": 3600,
        "listener": "127.0.0.1", "port": 0,
        "httpListener": "127.0.0.1", "httpport": http_port,
        "externalon": false,
    });
    let server = Server::start(&config, &[], &[]);
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
    server.proc.signal(libc::SIGUSR1);
    wait_for(5, "a fetch after SIGUSR1", || master.hits.load(Ordering::SeqCst) > hits).await;

    let started = Instant::now();
    server.proc.signal(libc::SIGTERM);
    loop {
        if let Some(status) = server.proc.try_wait() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "did not exit within 2 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
