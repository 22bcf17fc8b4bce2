//! Secure clusters: HTTPS to the masters with a CA bundle and
//! client certificates, HTTP basic authentication, and DC/OS IAM logins,
//! against fake masters over real TLS on 127.0.0.1. Certificates and keys
//! are made fresh for each run (`harness::pki`). The tests that look at the
//! logs capture what their own thread logs (`harness::logs::capture`): they
//! run on a current-thread runtime, so that is what their servers log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::post;
use hickory_proto::rr::RecordType;
use rcgen::KeyPair;
use serde_json::{Value, json};

use crate::harness::pki::{Ca, Pki, new_ca, pem_block};
use crate::harness::{
    Behaviour, FIXTURE, FakeMaster, HttpServer, MasterState, a_answers, fetcher, json_response,
    logs, merged, serve, serve_tls, start_with_masters, state_with_leader, test_config, udp_async,
    wait_for, wait_loaded,
};
use mesos_dns::fetch::{FetchError, Fetcher, SetupError};

/// `text` holds none of `secrets`.
#[track_caller]
fn assert_clean(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "secret {s:?} leaked in: {text}");
    }
}

// ---------------------------------------------------------------------------
// HTTPS

/// A master leading with [`FIXTURE`] over HTTPS with `pki`'s server
/// certificate (wanting client certificates signed by `client_ca`, if any).
async fn tls_master(pki: &Pki, client_ca: Option<&Ca>) -> (MasterState, HttpServer) {
    let master = MasterState::new();
    let server = serve_tls(master.router(), pki.server_config(client_ca)).await;
    master.lead(FIXTURE, server.addr);
    (master, server)
}

#[tokio::test]
async fn https_verified_with_ca_file() {
    let pki = Pki::new();
    let (_master, server) = tls_master(&pki, None).await;
    let f = fetcher(server.addr, json!({"mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem")}));
    let body = f.fetch(&server.addr.to_string()).await.unwrap();
    assert_eq!(body, state_with_leader(FIXTURE, server.addr));

    // The whole pipeline over HTTPS: records appear.
    let running = start_with_masters(test_config(
        &[server.addr],
        json!({"mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem")}),
    ))
    .await;
    wait_loaded(&running).await;
    let dns = running.dns_addr.unwrap();
    let m = udp_async(dns, "leader.mesos.", RecordType::A, None).await;
    assert_eq!(a_answers(&m), vec!["127.0.0.1"]);
    running.shutdown().await;
}

#[tokio::test]
async fn https_without_the_ca_is_refused_clearly() {
    let pki = Pki::new();
    let (master, server) = tls_master(&pki, None).await;

    // No caCertFile: the system's roots do not know our CA.
    let f = fetcher(server.addr, json!({"mesosHTTPSOn": true}));
    let err = f.fetch(&server.addr.to_string()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::Http { .. }), "{err:?}");
    assert!(msg.contains("TLS handshake failed"), "{msg}");
    assert!(msg.contains("certificate") && msg.contains("UnknownIssuer"), "{msg}");
    assert!(msg.contains("set caCertFile"), "{msg}");
    assert!(msg.starts_with(&format!("https://{}/master/state: ", server.addr)), "{msg}");

    // Another CA in caCertFile: the same, naming the file.
    let other = new_ca("another CA");
    let path = pki.write("other-ca.pem", &other.pem);
    let f = fetcher(server.addr, json!({"mesosHTTPSOn": true, "caCertFile": path}));
    let msg = f.fetch(&server.addr.to_string()).await.unwrap_err().to_string();
    assert!(msg.contains("UnknownIssuer") && msg.contains("other-ca.pem"), "{msg}");
    assert_eq!(master.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn https_to_a_plain_http_master() {
    let pki = Pki::new();
    let master = MasterState::new();
    let server = serve(master.router()).await;
    master.lead(FIXTURE, server.addr);
    let f = fetcher(server.addr, json!({"mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem")}));
    let msg = f.fetch(&server.addr.to_string()).await.unwrap_err().to_string();
    assert!(msg.contains("TLS handshake failed") && msg.contains("serving HTTPS"), "{msg}");
}

#[tokio::test]
async fn timeouts_are_named() {
    let master = FakeMaster::start(Behaviour::Hang).await;
    let f = fetcher(master.addr, json!({"stateTimeoutSeconds": 1}));
    let msg = f.fetch(&master.addr.to_string()).await.unwrap_err().to_string();
    assert!(msg.contains("timed out"), "{msg}");
}

#[tokio::test]
async fn client_certificates() {
    let pki = Pki::new();
    let (master, server) = tls_master(&pki, Some(&pki.ca)).await;
    let addr = server.addr.to_string();
    let https = |extra: Value| {
        fetcher(
            server.addr,
            merged(json!({"mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem")}), &extra),
        )
    };

    // Ours (an EC key in PKCS#8, an RSA key in PKCS#1) are accepted.
    for (name, rsa) in [("client-ec", false), ("client-rsa", true)] {
        let (cert, key) = pki.client_cert(&pki.ca, name, rsa);
        let f = https(json!({"certFile": cert, "keyFile": key}));
        let body = f.fetch(&addr).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(body, state_with_leader(FIXTURE, server.addr));
    }
    assert_eq!(master.hits.load(Ordering::SeqCst), 2);

    // None: refused, and the error says a client certificate is needed.
    let err = https(json!({})).fetch(&addr).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("TLS handshake failed"), "{msg}");
    assert!(msg.contains("client certificate"), "{msg}");
    assert!(msg.contains("certFile and keyFile"), "{msg}");

    // One from another CA: refused, naming our certificate.
    let other = new_ca("another CA");
    let (cert, key) = pki.client_cert(&other, "stranger", false);
    let msg = https(json!({"certFile": cert, "keyFile": key}))
        .fetch(&addr)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("TLS handshake failed") && msg.contains("stranger.pem"), "{msg}");
    assert_eq!(master.hits.load(Ordering::SeqCst), 2, "no request got through");
    assert!(server.refused.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn unusable_tls_files_are_config_errors() {
    let pki = Pki::new();
    let addr: SocketAddr = "127.0.0.1:5050".parse().unwrap();
    let (cert, key) = pki.client_cert(&pki.ca, "client", false);
    let (_, other_key) = pki.client_cert(&pki.ca, "other", false);
    let setup = |extra: Value| match Fetcher::new(&test_config(
        &[addr],
        merged(json!({"mesosHTTPSOn": true}), &extra),
    )) {
        Err(SetupError::Config(e)) => e.to_string(),
        other => panic!("expected a config error, got {other:?}"),
    };

    let missing = pki.path("missing.pem");
    let msg = setup(json!({"caCertFile": missing}));
    assert!(msg.contains("key \"caCertFile\"") && msg.contains("missing.pem"), "{msg}");
    assert!(msg.contains("cannot read"), "{msg}");

    let garbage = pki.write("garbage.pem", "hello\n");
    let msg = setup(json!({"caCertFile": garbage}));
    assert!(msg.contains("caCertFile") && msg.contains("no certificate"), "{msg}");

    let msg = setup(json!({"certFile": cert, "keyFile": pki.path("nokey.key")}));
    assert!(msg.contains("key \"keyFile\"") && msg.contains("nokey.key"), "{msg}");

    let msg = setup(json!({"certFile": garbage, "keyFile": key}));
    assert!(msg.contains("key \"certFile\"") && msg.contains("no certificate"), "{msg}");

    let msg = setup(json!({"certFile": cert, "keyFile": other_key}));
    assert!(msg.contains("key \"keyFile\"") && msg.contains("does not belong"), "{msg}");

    let key_text = std::fs::read_to_string(&key).unwrap();
    let body_line = key_text.lines().nth(1).unwrap().to_owned();
    let broken = pki.write("broken.key", &key_text.replace(&body_line, &format!("{body_line}!!")));
    let msg = setup(json!({"certFile": cert, "keyFile": broken}));
    assert!(msg.contains("keyFile") && msg.contains("not valid PEM"), "{msg}");
    assert_clean(&msg, &[&body_line]);

    // Read even with HTTPS off, as the original does.
    let msg = match Fetcher::new(&test_config(&[addr], json!({"caCertFile": missing}))) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted a missing caCertFile"),
    };
    assert!(msg.contains("caCertFile"), "{msg}");
}

// ---------------------------------------------------------------------------
// Basic authentication

fn basic_header(principal: &str, secret: &str) -> String {
    format!("Basic {}", data_encoding::BASE64.encode(format!("{principal}:{secret}").as_bytes()))
}

#[tokio::test]
async fn basic_authentication() {
    let logs = logs::capture();
    const SECRET: &str = "s3cr3t-Basic-Pa55";
    const ROTATED: &str = "r0tated-Basic-Pa55";
    let expected = Arc::new(Mutex::new(basic_header("mesos-dns", SECRET)));
    let want = Arc::clone(&expected);
    let master = MasterState::with_allow(Arc::new(move |h| {
        h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
            == Some(want.lock().unwrap().as_str())
    }));
    let server = serve(master.router()).await;
    master.lead(FIXTURE, server.addr);
    let addr = server.addr.to_string();
    let basic = |secret: &str| {
        json!({"mesosAuthentication": "basic",
               "mesosCredentials": {"principal": "mesos-dns", "secret": secret}})
    };

    // Without credentials: 401, and what to set.
    let err = fetcher(server.addr, json!({})).fetch(&addr).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Auth { status: reqwest::StatusCode::UNAUTHORIZED, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("401") && msg.contains("mesosAuthentication"), "{msg}");

    // A wrong secret: a clear error, without the secret.
    let wrong = fetcher(server.addr, basic("not-the-Secret"));
    let err = wrong.fetch(&addr).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("authentication failed (HTTP 401 Unauthorized)"), "{msg}");
    assert!(msg.contains("check mesosCredentials") && msg.contains("\"mesos-dns\""), "{msg}");
    assert_clean(&msg, &["not-the-Secret"]);
    assert_clean(&format!("{err:?} {wrong:?}"), &["not-the-Secret"]);

    // The right one: the state, and records in service.
    let right = fetcher(server.addr, basic(SECRET));
    assert_clean(&format!("{right:?}"), &[SECRET]);
    assert_eq!(right.fetch(&addr).await.unwrap(), state_with_leader(FIXTURE, server.addr));
    let running = start_with_masters(test_config(&[server.addr], basic(SECRET))).await;
    wait_loaded(&running).await;
    let before = running.current.load_full().unwrap();

    // The master's secret changes: refreshes fail with a clear log line,
    // and the records stay in service.
    *expected.lock().unwrap() = basic_header("mesos-dns", ROTATED);
    let url = format!("http://{addr}/master/state: authentication failed");
    wait_for(10, "the failure to be logged", || logs.text().contains(&url)).await;
    let after = running.current.load_full().unwrap();
    assert!(Arc::ptr_eq(&before, &after), "records replaced after a failed refresh");
    let dns = running.dns_addr.unwrap();
    let m = udp_async(dns, "leader.mesos.", RecordType::A, None).await;
    assert_eq!(a_answers(&m), vec!["127.0.0.1"]);
    running.shutdown().await;
    assert_clean(&logs.text(), &[SECRET, ROTATED, "not-the-Secret"]);
}

// ---------------------------------------------------------------------------
// DC/OS IAM

/// A fake IAM: the login endpoint checks the JWT (signature with the
/// account's public key, `uid`, `exp`) and hands out tokens, each good for
/// `uses` state requests (0: unlimited); the master wants one of them.
#[derive(Clone)]
struct FakeIam {
    uid: String,
    public_key: Arc<Mutex<Vec<u8>>>,
    logins: Arc<AtomicUsize>,
    /// Token → state requests left (usize::MAX: unlimited).
    tokens: Arc<Mutex<HashMap<String, usize>>>,
    uses: usize,
    /// Answer logins with this instead.
    broken: Arc<Mutex<Option<Canned>>>,
    /// Refuse every token at the master.
    refuse_all: Arc<std::sync::atomic::AtomicBool>,
    master: MasterState,
}

/// A canned reply: status and body.
type Canned = (u16, Vec<u8>);

/// A fresh RSA service account key: (private key PEM, public key PKCS#1 DER).
fn account_key() -> (String, Vec<u8>) {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
    (pem_block("PRIVATE KEY", pkcs8.as_ref()), pair.public_key().as_ref().to_vec())
}

impl FakeIam {
    fn new(uid: &str, public_key: Vec<u8>, uses: usize) -> FakeIam {
        let tokens: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let refuse_all = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (book, refuse) = (Arc::clone(&tokens), Arc::clone(&refuse_all));
        let master = MasterState::with_allow(Arc::new(move |h| {
            let Some(token) = h
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("token="))
            else {
                return false;
            };
            if refuse.load(Ordering::SeqCst) {
                return false;
            }
            match book.lock().unwrap().get_mut(token) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            }
        }));
        FakeIam {
            uid: uid.to_owned(),
            public_key: Arc::new(Mutex::new(public_key)),
            logins: Arc::default(),
            tokens,
            uses,
            broken: Arc::default(),
            refuse_all,
            master,
        }
    }

    fn router(&self) -> Router {
        self.master.router().merge(
            Router::new().route("/acs/api/v1/auth/login", post(login)).with_state(self.clone()),
        )
    }

    fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    /// Every token handed out so far.
    fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().keys().cloned().collect()
    }

    /// The claims of a valid login assertion, else why not.
    fn check(&self, body: &[u8]) -> Result<(), String> {
        let req: Value = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
        let jwt = req["token"].as_str().ok_or("no token")?;
        let parts: Vec<&str> = jwt.split('.').collect();
        if parts.len() != 3 {
            return Err("not a JWT".into());
        }
        let b64 = &data_encoding::BASE64URL_NOPAD;
        let decode = |s: &str| b64.decode(s.as_bytes()).map_err(|e| format!("base64: {e}"));
        let head: Value = serde_json::from_slice(&decode(parts[0])?).map_err(|e| e.to_string())?;
        if head["alg"] != "RS256" {
            return Err(format!("alg {}", head["alg"]));
        }
        let key = self.public_key.lock().unwrap().clone();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &decode(parts[2])?)
            .map_err(|_| "bad signature".to_owned())?;
        let claims: Value =
            serde_json::from_slice(&decode(parts[1])?).map_err(|e| e.to_string())?;
        if claims["uid"] != self.uid.as_str() || req["uid"] != self.uid.as_str() {
            return Err(format!("uid {} / {}", claims["uid"], req["uid"]));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let exp = claims["exp"].as_u64().ok_or("no exp")?;
        if exp <= now || exp > now + 2 * 3600 {
            return Err(format!("exp {exp} (now {now})"));
        }
        Ok(())
    }
}

async fn login(AxState(iam): AxState<FakeIam>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some((status, body)) = iam.broken.lock().unwrap().clone() {
        return json_response(status, body);
    }
    assert_eq!(
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    if let Err(why) = iam.check(&body) {
        let reply = json!({"title": "Unauthorized", "description": format!("invalid login: {why}"),
                           "code": "ERR_INVALID_JWT"});
        return json_response(401, reply.to_string().into_bytes());
    }
    let n = iam.logins.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("iam-token-{n}-{}", rand::random::<u64>());
    let uses = if iam.uses == 0 { usize::MAX } else { iam.uses };
    iam.tokens.lock().unwrap().insert(token.clone(), uses);
    json_response(200, json!({ "token": token }).to_string().into_bytes())
}

/// The IAM config file for `uid` with `key`, logging in at `endpoint`.
fn iam_file(dir: &Path, uid: &str, key: &str, endpoint: &str) -> PathBuf {
    let path = dir.join("service-account.json");
    let doc =
        json!({"uid": uid, "private_key": key, "login_endpoint": endpoint, "scheme": "RS256"});
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

fn iam_extra(file: &Path) -> Value {
    json!({"mesosAuthentication": "iam", "IAMConfigFile": file})
}

/// A fake IAM over HTTP with an account; (server, iam, the config extras,
/// the private key PEM).
async fn iam_cluster(uses: usize) -> (HttpServer, FakeIam, Value, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = account_key();
    let iam = FakeIam::new("mesos-dns-account", public, uses);
    let server = serve(iam.router()).await;
    iam.master.lead(FIXTURE, server.addr);
    let endpoint = format!("http://{}/acs/api/v1/auth/login", server.addr);
    let file = iam_file(dir.path(), "mesos-dns-account", &key, &endpoint);
    (server, iam, iam_extra(&file), key, dir)
}

/// Lines of a PEM key's body (to look for in text that must not hold it).
fn key_lines(pem: &str) -> Vec<String> {
    pem.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned).collect()
}

#[tokio::test]
async fn iam_login_then_token_reused() {
    let logs = logs::capture();
    let (server, iam, extra, key, _dir) = iam_cluster(0).await;
    let f = fetcher(server.addr, extra.clone());
    let addr = server.addr.to_string();
    for _ in 0..3 {
        assert_eq!(f.fetch(&addr).await.unwrap(), state_with_leader(FIXTURE, server.addr));
    }
    assert_eq!(iam.logins(), 1, "one login, the token cached");
    assert_eq!(iam.master.hits.load(Ordering::SeqCst), 3);

    // And the server, end to end.
    let running = start_with_masters(test_config(&[server.addr], extra)).await;
    wait_loaded(&running).await;
    running.shutdown().await;

    let debug = format!("{f:?}");
    assert!(debug.contains("mesos-dns-account"), "{debug}");
    let mut secrets: Vec<String> = iam.tokens();
    secrets.extend(key_lines(&key));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_clean(&debug, &secrets);
    assert_clean(&logs.text(), &secrets);
}

#[tokio::test]
async fn iam_token_expiry_logs_in_again() {
    // Each token is good for one state request, then the master answers 401.
    let (server, iam, extra, _key, _dir) = iam_cluster(1).await;
    let f = fetcher(server.addr, extra);
    let addr = server.addr.to_string();
    f.fetch(&addr).await.unwrap();
    assert_eq!(iam.logins(), 1);
    // Refused (401) with the first token → a new login → served.
    f.fetch(&addr).await.unwrap();
    assert_eq!(iam.logins(), 2);
    assert_eq!(iam.master.hits.load(Ordering::SeqCst), 3);
    // Clones share the token (and its renewal).
    let g = f.clone();
    g.fetch(&addr).await.unwrap();
    assert_eq!(iam.logins(), 3);
    assert_eq!(iam.master.hits.load(Ordering::SeqCst), 5);

    // A master that refuses even fresh tokens: one new login, then a clear error.
    iam.refuse_all.store(true, Ordering::SeqCst);
    let err = f.fetch(&addr).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::Auth { .. }), "{err:?}");
    assert!(msg.contains("authentication failed (HTTP 401 Unauthorized)"), "{msg}");
    assert!(msg.contains("\"mesos-dns-account\"") && msg.contains("IAMConfigFile"), "{msg}");
    assert_eq!(iam.logins(), 4);
    let tokens = iam.tokens();
    assert_clean(&msg, &tokens.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn iam_login_failures() {
    let logs = logs::capture();
    let (server, iam, extra, key, dir) = iam_cluster(0).await;
    let f = fetcher(server.addr, extra);
    let addr = server.addr.to_string();
    let endpoint = format!("http://{addr}/acs/api/v1/auth/login");

    // The endpoint knows another key: the signature does not verify.
    let (_, other_public) = account_key();
    let real = std::mem::replace(&mut *iam.public_key.lock().unwrap(), other_public);
    let err = f.fetch(&addr).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::Login { .. }), "{err:?}");
    assert!(msg.starts_with(&format!("IAM login at {endpoint} failed: HTTP 401")), "{msg}");
    assert!(msg.contains("ERR_INVALID_JWT") && msg.contains("bad signature"), "{msg}");
    assert!(msg.contains("check \"uid\" and \"private_key\""), "{msg}");
    *iam.public_key.lock().unwrap() = real;

    // Unreadable replies.
    *iam.broken.lock().unwrap() = Some((200, b"<html>welcome</html>".to_vec()));
    let msg = f.fetch(&addr).await.unwrap_err().to_string();
    assert!(msg.contains("unreadable reply (HTTP 200 OK): not JSON"), "{msg}");
    *iam.broken.lock().unwrap() = Some((200, br#"{"tokens": "x"}"#.to_vec()));
    let msg = f.fetch(&addr).await.unwrap_err().to_string();
    assert!(msg.contains("no \"token\""), "{msg}");
    *iam.broken.lock().unwrap() = Some((503, b"busy".to_vec()));
    let msg = f.fetch(&addr).await.unwrap_err().to_string();
    assert!(msg.contains("failed: HTTP 503 Service Unavailable"), "{msg}");
    assert_eq!(iam.master.hits.load(Ordering::SeqCst), 0, "no state request without a token");

    // Mended: served.
    *iam.broken.lock().unwrap() = None;
    f.fetch(&addr).await.unwrap();
    assert_eq!(iam.logins(), 1);

    // A login endpoint that is down.
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let f = fetcher(
        "127.0.0.1:1".parse().unwrap(),
        iam_extra(&dir.path().join("service-account.json")),
    );
    let msg = f.fetch("127.0.0.1:1").await.unwrap_err().to_string();
    assert!(msg.starts_with(&format!("IAM login at {endpoint} failed: ")), "{msg}");
    assert!(msg.contains("onnect"), "{msg}");
    let lines = key_lines(&key);
    assert_clean(&logs.text(), &lines.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn iam_file_problems_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:5050".parse().unwrap();
    let (key, _) = account_key();
    let setup = |extra: Value| match Fetcher::new(&test_config(&[addr], extra)) {
        Err(SetupError::Config(e)) => e.to_string(),
        other => panic!("expected a config error, got {other:?}"),
    };
    let missing = dir.path().join("missing.json");
    let msg = setup(iam_extra(&missing));
    assert!(msg.contains("key \"IAMConfigFile\"") && msg.contains("missing.json"), "{msg}");

    let file = iam_file(dir.path(), "u", "not a key", "https://leader.mesos/acs/api/v1/auth/login");
    let msg = setup(iam_extra(&file));
    assert!(msg.contains("IAMConfigFile") && msg.contains("\"private_key\""), "{msg}");

    // An EC key is refused (RS256 needs RSA); nothing of it is shown.
    let ec = KeyPair::generate().unwrap().serialize_pem();
    let file = iam_file(dir.path(), "u", &ec, "https://leader.mesos/acs/api/v1/auth/login");
    let msg = setup(iam_extra(&file));
    assert!(msg.contains("not an RSA key"), "{msg}");
    assert_clean(&msg, &key_lines(&ec).iter().map(String::as_str).collect::<Vec<_>>());

    let file = iam_file(dir.path(), "u", &key, "leader.mesos:443/login");
    let msg = setup(iam_extra(&file));
    assert!(msg.contains("login_endpoint"), "{msg}");

    // Named but unused (authentication off): still read, as the original.
    let msg = match Fetcher::new(&test_config(&[addr], json!({"IAMConfigFile": missing}))) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted a missing IAMConfigFile"),
    };
    assert!(msg.contains("IAMConfigFile"), "{msg}");
}

// ---------------------------------------------------------------------------
// Everything at once: IAM over HTTPS with a client certificate (the login
// endpoint is reached with the same TLS settings, as in the original).

#[tokio::test]
async fn iam_over_mutual_tls() {
    let logs = logs::capture();
    let pki = Pki::new();
    let (key, public) = account_key();
    let iam = FakeIam::new("strict-account", public, 1);
    let server = serve_tls(iam.router(), pki.server_config(Some(&pki.ca))).await;
    iam.master.lead(FIXTURE, server.addr);
    let (cert, client_key) = pki.client_cert(&pki.ca, "client", false);
    let endpoint = format!("https://{}/acs/api/v1/auth/login", server.addr);
    let file = iam_file(pki.dir.path(), "strict-account", &key, &endpoint);
    let extra = json!({
        "mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem"),
        "certFile": cert, "keyFile": client_key,
        "mesosAuthentication": "iam", "IAMConfigFile": file,
    });
    let running = start_with_masters(test_config(&[server.addr], extra)).await;
    wait_loaded(&running).await;
    // Each refresh (every second) needs a new login: a token is good once.
    wait_for(10, "refreshes with new tokens", || iam.logins() >= 3).await;
    running.shutdown().await;
    assert_eq!(server.refused.load(Ordering::SeqCst), 0);
    let failed = format!("{}/master/state", server.addr);
    assert!(
        !logs.text().lines().any(|l| l.contains("refresh failed") && l.contains(&failed)),
        "{}",
        logs.text()
    );
}
