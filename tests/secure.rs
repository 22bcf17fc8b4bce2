//! Secure clusters: HTTPS to the masters with a CA bundle and
//! client certificates, HTTP basic authentication, and DC/OS IAM logins,
//! against fake masters over real TLS on 127.0.0.1. Certificates and keys
//! are made here, fresh for each run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{any, post};
use hickory_proto::rr::RecordType;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use common::{a_answers, start_with_masters, state_with_leader, test_config, udp, wait_loaded};
use mesos_dns::config::Config;
use mesos_dns::fetch::{FetchError, Fetcher, SetupError};

const FIXTURE: &str = "mesos-dns-fake.json";

// ---------------------------------------------------------------------------
// Logs: captured for the whole test binary, to check that no secret is ever
// written and that failures are logged.

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// `text` holds none of `secrets`.
#[track_caller]
fn assert_clean(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "secret {s:?} leaked in: {text}");
    }
}

// ---------------------------------------------------------------------------
// PKI: a CA, a server certificate for 127.0.0.1/localhost and client
// certificates, written as PEM files.

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

fn new_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let params = ca_params(name);
    let cert = params.self_signed(&key).unwrap();
    Ca { der: cert.der().clone(), pem: cert.pem(), issuer: Issuer::new(params, key) }
}

/// A leaf certificate signed by `ca`: (certificate PEM, key, certificate DER).
fn leaf(
    ca: &Ca,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    key: KeyPair,
) -> (String, KeyPair, CertificateDer<'static>) {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.extended_key_usages = vec![usage];
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key, cert.der().clone())
}

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("mesos-dns test CA");
        let (_, key, der) = leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            KeyPair::generate().unwrap(),
        );
        let server_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
        Pki { dir, ca, server_chain: vec![der], server_key }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        self.path(name)
    }

    /// A client certificate signed by `ca` written as `<name>.pem` and
    /// `<name>.key`; the key as PKCS#8 (ECDSA) or, with `rsa_pkcs1`, as a
    /// PKCS#1 RSA key. Returns the two paths.
    fn client_cert(&self, ca: &Ca, name: &str, rsa_pkcs1: bool) -> (String, String) {
        let key = if rsa_pkcs1 {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap()
        } else {
            KeyPair::generate().unwrap()
        };
        let (pem, key, _) = leaf(ca, &["mesos-dns"], ExtendedKeyUsagePurpose::ClientAuth, key);
        let key_pem = if rsa_pkcs1 {
            pem_block("RSA PRIVATE KEY", &pkcs1_of_pkcs8(&key.serialize_der()))
        } else {
            key.serialize_pem()
        };
        (self.write(&format!("{name}.pem"), &pem), self.write(&format!("{name}.key"), &key_pem))
    }

    /// A rustls server config with our certificate; with `client_ca`, client
    /// certificates signed by it are required.
    fn server_config(&self, client_ca: Option<&Ca>) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.der.clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(self.server_chain.clone(), self.server_key.clone_key())
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo.
fn pkcs1_of_pkcs8(der: &[u8]) -> Vec<u8> {
    fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let (len, hdr) = if b[1] < 0x80 {
            (b[1] as usize, 2)
        } else {
            let n = (b[1] & 0x7f) as usize;
            (b[2..2 + n].iter().fold(0usize, |a, x| a << 8 | *x as usize), 2 + n)
        };
        (b[0], &b[hdr..hdr + len], &b[hdr + len..])
    }
    let (_, info, _) = tlv(der);
    let (_, _, rest) = tlv(info); // version
    let (_, _, rest) = tlv(rest); // algorithm
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "privateKey OCTET STRING");
    key.to_vec()
}

// ---------------------------------------------------------------------------
// Servers: a router over HTTPS (handshakes off the accept loop) or HTTP.

struct Server {
    addr: SocketAddr,
    /// TLS handshakes the server refused.
    refused: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct TlsListener {
    addr: SocketAddr,
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

async fn serve_https(router: Router, config: rustls::ServerConfig) -> Server {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let refused = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let counter = Arc::clone(&refused);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = tcp.accept().await else { continue };
            let (acceptor, tx, counter) = (acceptor.clone(), tx.clone(), Arc::clone(&counter));
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Err(_) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let serve = tokio::spawn(async move {
        let _ = axum::serve(TlsListener { addr, rx }, router).await;
    });
    Server { addr, refused, tasks: vec![accept, serve] }
}

async fn serve_http(router: Router) -> Server {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let serve = tokio::spawn(async move {
        let _ = axum::serve(tcp, router).await;
    });
    Server { addr, refused: Arc::new(AtomicUsize::new(0)), tasks: vec![serve] }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// A fake master: `/master/state` answers `body` when `allow` accepts the
/// request's headers, else 401.
#[derive(Clone)]
struct Master {
    body: Arc<Mutex<Vec<u8>>>,
    allow: Arc<dyn Fn(&HeaderMap) -> bool + Send + Sync>,
    hits: Arc<AtomicUsize>,
}

impl Master {
    fn new(allow: impl Fn(&HeaderMap) -> bool + Send + Sync + 'static) -> Master {
        Master {
            body: Arc::new(Mutex::new(Vec::new())),
            allow: Arc::new(allow),
            hits: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn open() -> Master {
        Master::new(|_| true)
    }

    fn router(&self) -> Router {
        Router::new().route("/master/state", any(master_state)).with_state(self.clone())
    }

    /// Serve the fixture naming `addr` the leader.
    fn lead(&self, addr: SocketAddr) {
        *self.body.lock().unwrap() = state_with_leader(FIXTURE, addr);
    }
}

async fn master_state(AxState(m): AxState<Master>, headers: HeaderMap) -> Response {
    m.hits.fetch_add(1, Ordering::SeqCst);
    if !(m.allow)(&headers) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Basic realm=\"mesos\"")
            .body(Body::empty())
            .unwrap();
    }
    let body = m.body.lock().unwrap().clone();
    json_response(StatusCode::OK, body)
}

/// A config for these tests (`test_config` plus `extra`).
fn config(master: SocketAddr, extra: Value) -> Config {
    test_config(&[master], extra)
}

fn fetcher(master: SocketAddr, extra: Value) -> Fetcher {
    Fetcher::new(&config(master, extra)).unwrap()
}

// ---------------------------------------------------------------------------
// HTTPS

#[tokio::test]
async fn https_verified_with_ca_file() {
    capture_logs();
    let pki = Pki::new();
    let master = Master::open();
    let server = serve_https(master.router(), pki.server_config(None)).await;
    master.lead(server.addr);
    let f = fetcher(server.addr, json!({"mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem")}));
    let body = f.fetch(&server.addr.to_string()).await.unwrap();
    assert_eq!(body, state_with_leader(FIXTURE, server.addr));

    // The whole pipeline over HTTPS: records appear.
    let running = start_with_masters(config(
        server.addr,
        json!({"mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem")}),
    ))
    .await;
    wait_loaded(&running).await;
    let dns = running.dns_addr.unwrap();
    let m = tokio::task::spawn_blocking(move || udp(dns, "leader.mesos.", RecordType::A, None))
        .await
        .unwrap();
    assert_eq!(a_answers(&m), vec!["127.0.0.1"]);
    running.shutdown().await;
}

#[tokio::test]
async fn https_without_the_ca_is_refused_clearly() {
    capture_logs();
    let pki = Pki::new();
    let master = Master::open();
    let server = serve_https(master.router(), pki.server_config(None)).await;
    master.lead(server.addr);

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
    capture_logs();
    let pki = Pki::new();
    let master = Master::open();
    let server = serve_http(master.router()).await;
    master.lead(server.addr);
    let f = fetcher(server.addr, json!({"mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem")}));
    let msg = f.fetch(&server.addr.to_string()).await.unwrap_err().to_string();
    assert!(msg.contains("TLS handshake failed") && msg.contains("serving HTTPS"), "{msg}");
}

#[tokio::test]
async fn timeouts_are_named() {
    let master = common::FakeMaster::start(common::Behaviour::Hang).await;
    let f = fetcher(master.addr, json!({"stateTimeoutSeconds": 1}));
    let msg = f.fetch(&master.addr.to_string()).await.unwrap_err().to_string();
    assert!(msg.contains("timed out"), "{msg}");
}

#[tokio::test]
async fn client_certificates() {
    capture_logs();
    let pki = Pki::new();
    let master = Master::open();
    let server = serve_https(master.router(), pki.server_config(Some(&pki.ca))).await;
    master.lead(server.addr);
    let addr = server.addr.to_string();
    let https = |extra: Value| {
        let mut doc = json!({"mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem")});
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        fetcher(server.addr, doc)
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
    capture_logs();
    let pki = Pki::new();
    let addr: SocketAddr = "127.0.0.1:5050".parse().unwrap();
    let (cert, key) = pki.client_cert(&pki.ca, "client", false);
    let (_, other_key) = pki.client_cert(&pki.ca, "other", false);
    let setup = |extra: Value| {
        let mut doc = json!({"mesosHTTPSOn": true});
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        match Fetcher::new(&config(addr, doc)) {
            Err(SetupError::Config(e)) => e.to_string(),
            other => panic!("expected a config error, got {other:?}"),
        }
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
    let msg = match Fetcher::new(&config(addr, json!({"caCertFile": missing}))) {
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
    capture_logs();
    const SECRET: &str = "s3cr3t-Basic-Pa55";
    const ROTATED: &str = "r0tated-Basic-Pa55";
    let expected = Arc::new(Mutex::new(basic_header("mesos-dns", SECRET)));
    let want = Arc::clone(&expected);
    let master = Master::new(move |h| {
        h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
            == Some(want.lock().unwrap().as_str())
    });
    let server = serve_http(master.router()).await;
    master.lead(server.addr);
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
    let running = start_with_masters(config(server.addr, basic(SECRET))).await;
    wait_loaded(&running).await;
    let before = running.current.load_full().unwrap();

    // The master's secret changes: refreshes fail with a clear log line,
    // and the records stay in service.
    *expected.lock().unwrap() = basic_header("mesos-dns", ROTATED);
    let url = format!("http://{addr}/master/state: authentication failed");
    common::wait_for(10, "the failure to be logged", || logs().contains(&url)).await;
    let after = running.current.load_full().unwrap();
    assert!(Arc::ptr_eq(&before, &after), "records replaced after a failed refresh");
    let dns = running.dns_addr.unwrap();
    let m = tokio::task::spawn_blocking(move || udp(dns, "leader.mesos.", RecordType::A, None))
        .await
        .unwrap();
    assert_eq!(a_answers(&m), vec!["127.0.0.1"]);
    running.shutdown().await;
    assert_clean(&logs(), &[SECRET, ROTATED, "not-the-Secret"]);
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
    master: Master,
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
        let master = Master::new(move |h| {
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
        });
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
        return json_response(StatusCode::from_u16(status).unwrap(), body);
    }
    assert_eq!(
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    if let Err(why) = iam.check(&body) {
        let reply = json!({"title": "Unauthorized", "description": format!("invalid login: {why}"),
                           "code": "ERR_INVALID_JWT"});
        return json_response(StatusCode::UNAUTHORIZED, reply.to_string().into_bytes());
    }
    let n = iam.logins.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("iam-token-{n}-{}", rand::random::<u64>());
    let uses = if iam.uses == 0 { usize::MAX } else { iam.uses };
    iam.tokens.lock().unwrap().insert(token.clone(), uses);
    json_response(StatusCode::OK, json!({ "token": token }).to_string().into_bytes())
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
async fn iam_cluster(uses: usize) -> (Server, FakeIam, Value, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = account_key();
    let iam = FakeIam::new("mesos-dns-account", public, uses);
    let server = serve_http(iam.router()).await;
    iam.master.lead(server.addr);
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
    capture_logs();
    let (server, iam, extra, key, _dir) = iam_cluster(0).await;
    let f = fetcher(server.addr, extra.clone());
    let addr = server.addr.to_string();
    for _ in 0..3 {
        assert_eq!(f.fetch(&addr).await.unwrap(), state_with_leader(FIXTURE, server.addr));
    }
    assert_eq!(iam.logins(), 1, "one login, the token cached");
    assert_eq!(iam.master.hits.load(Ordering::SeqCst), 3);

    // And the server, end to end.
    let running = start_with_masters(config(server.addr, extra)).await;
    wait_loaded(&running).await;
    running.shutdown().await;

    let debug = format!("{f:?}");
    assert!(debug.contains("mesos-dns-account"), "{debug}");
    let mut secrets: Vec<String> = iam.tokens();
    secrets.extend(key_lines(&key));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_clean(&debug, &secrets);
    assert_clean(&logs(), &secrets);
}

#[tokio::test]
async fn iam_token_expiry_logs_in_again() {
    capture_logs();
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
    capture_logs();
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
    assert_clean(&logs(), &lines.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn iam_file_problems_are_config_errors() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:5050".parse().unwrap();
    let (key, _) = account_key();
    let setup = |extra: Value| match Fetcher::new(&config(addr, extra)) {
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
    let msg = match Fetcher::new(&config(addr, json!({"IAMConfigFile": missing}))) {
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
    capture_logs();
    let pki = Pki::new();
    let (key, public) = account_key();
    let iam = FakeIam::new("strict-account", public, 1);
    let server = serve_https(iam.router(), pki.server_config(Some(&pki.ca))).await;
    iam.master.lead(server.addr);
    let (cert, client_key) = pki.client_cert(&pki.ca, "client", false);
    let endpoint = format!("https://{}/acs/api/v1/auth/login", server.addr);
    let file = iam_file(pki.dir.path(), "strict-account", &key, &endpoint);
    let extra = json!({
        "mesosHTTPSOn": true, "caCertFile": pki.path("ca.pem"),
        "certFile": cert, "keyFile": client_key,
        "mesosAuthentication": "iam", "IAMConfigFile": file,
    });
    let running = start_with_masters(config(server.addr, extra)).await;
    wait_loaded(&running).await;
    // Each refresh (every second) needs a new login: a token is good once.
    common::wait_for(10, "refreshes with new tokens", || iam.logins() >= 3).await;
    running.shutdown().await;
    assert_eq!(server.refused.load(Ordering::SeqCst), 0);
    let failed = format!("{}/master/state", server.addr);
    assert!(
        !logs().lines().any(|l| l.contains("refresh failed") && l.contains(&failed)),
        "{}",
        logs()
    );
}
