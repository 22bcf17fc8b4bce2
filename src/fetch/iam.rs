//! DC/OS IAM authentication (`mesosAuthentication: "iam"`).
//!
//! The service account file (`IAMConfigFile`) holds `uid`, `private_key`
//! (PEM RSA) and `login_endpoint`. To log in, a JWT with the claims `uid`
//! and `exp` is signed with the key (RS256) and POSTed as
//! `{"uid": ..., "token": <jwt>}` to the login endpoint, which answers
//! `{"token": ...}`; state requests then carry `Authorization: token=...`.
//! The token is cached and renewed before it expires, and at once when the
//! master answers 401.
//!
//! Neither the key, the JWT nor the token appears in errors, logs or `Debug`.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use rustls::pki_types::pem::SectionKind;
use serde_json::Value as Json;

use super::tls::{self, file_error};
use super::{FetchError, Secret};
use crate::config::{Config, ConfigError};

const KEY: &str = "IAMConfigFile";

/// How long the signed login assertion is valid (the original's hour).
pub(super) const JWT_LIFETIME: Duration = Duration::from_secs(3600);

/// A token is renewed this long before it expires.
pub(super) const RENEW_EARLY: Duration = Duration::from_secs(300);

/// The largest login reply read.
const MAX_REPLY_BYTES: usize = 64 << 10;

/// The service account file's fields, as the original reads them (keys
/// matched case-insensitively, as Go's decoder does; others ignored).
#[derive(Default)]
pub(super) struct AccountFile {
    pub uid: String,
    pub private_key: Secret,
    pub login_endpoint: String,
}

/// Reads and decodes `IAMConfigFile`. Errors name the key, the path and the
/// field, never the key material.
pub(super) fn read_file(config: &Config, path: &str) -> Result<AccountFile, ConfigError> {
    let fail = |reason: String| file_error(config, KEY, path, reason);
    let bytes = tls::read(config, KEY, path)?;
    // serde_json's syntax errors give a line and column, never the text.
    let doc: Json =
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("not valid JSON: {e}")))?;
    let Json::Object(entries) = doc else {
        return Err(fail("not a JSON object".to_owned()));
    };
    let mut file = AccountFile::default();
    for (name, value) in entries {
        let slot = match name.to_ascii_lowercase().as_str() {
            "uid" => &mut file.uid,
            "private_key" => &mut file.private_key.0,
            "login_endpoint" => &mut file.login_endpoint,
            _ => continue,
        };
        match value {
            Json::Null => {}
            Json::String(s) => *slot = s,
            _ => return Err(fail(format!("{name:?} must be a string"))),
        }
    }
    Ok(file)
}

/// A service account ready to log in, with its cached token.
pub(super) struct Iam {
    uid: String,
    endpoint: reqwest::Url,
    key: RsaKeyPair,
    rng: SystemRandom,
    cached: tokio::sync::Mutex<Option<Token>>,
    logins: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for Iam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iam")
            .field("uid", &self.uid)
            .field("login_endpoint", &self.endpoint.as_str())
            .field("private_key", &super::REDACTED)
            .finish_non_exhaustive()
    }
}

/// A token from the login endpoint.
#[derive(Clone)]
pub(super) struct Token {
    /// `token=<token>`, marked sensitive.
    pub header: HeaderValue,
    /// Which login produced it (1, 2, ...).
    pub serial: u64,
    renew_at: Instant,
}

impl Iam {
    /// Checks the account file: `uid`, an RSA `private_key` and an http(s)
    /// `login_endpoint`.
    pub(super) fn new(config: &Config, path: &str) -> Result<Iam, ConfigError> {
        let fail = |reason: String| file_error(config, KEY, path, reason);
        let file = read_file(config, path)?;
        if file.uid.is_empty() {
            return Err(fail("no \"uid\" (the service account's id)".to_owned()));
        }
        if file.private_key.0.is_empty() {
            return Err(fail("no \"private_key\" (the service account's PEM RSA key)".to_owned()));
        }
        if file.login_endpoint.is_empty() {
            return Err(fail("no \"login_endpoint\" (the IAM login URL)".to_owned()));
        }
        let endpoint = reqwest::Url::parse(&file.login_endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                fail(format!(
                    "\"login_endpoint\" {:?} is not an http:// or https:// URL",
                    file.login_endpoint
                ))
            })?;
        let key = rsa_key(file.private_key.0.as_bytes())
            .map_err(|reason| fail(format!("\"private_key\": {reason}")))?;
        Ok(Iam {
            uid: file.uid,
            endpoint,
            key,
            rng: SystemRandom::new(),
            cached: tokio::sync::Mutex::new(None),
            logins: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(super) fn uid(&self) -> &str {
        &self.uid
    }

    pub(super) fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// A valid token: the cached one, or a new one from the login endpoint.
    pub(super) async fn token(
        &self,
        client: &reqwest::Client,
        tls: &tls::Context,
    ) -> Result<Token, FetchError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.clone());
        }
        let renewing = cached.is_some();
        let token = self.login(client, tls).await?;
        if renewing {
            tracing::debug!(uid = %self.uid, "IAM token renewed");
        }
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Forget `used` (the master refused it); the next [`Iam::token`] logs
    /// in again. A newer token already cached is kept.
    pub(super) async fn invalidate(&self, used: &Token) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.serial == used.serial) {
            *cached = None;
        }
    }

    /// The signed login assertion: a JWT (RS256) with `uid` and `exp`.
    fn assertion(&self, exp: u64) -> Result<String, String> {
        let b64 = &data_encoding::BASE64URL_NOPAD;
        let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({ "exp": exp, "uid": self.uid });
        let claims = b64.encode(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, signing_input.as_bytes(), &mut signature)
            .map_err(|_| "cannot sign the login token with private_key".to_owned())?;
        Ok(format!("{signing_input}.{}", b64.encode(&signature)))
    }

    async fn login(
        &self,
        client: &reqwest::Client,
        tls: &tls::Context,
    ) -> Result<Token, FetchError> {
        let fail = |reason: String| FetchError::Login {
            endpoint: self.endpoint.as_str().to_owned(),
            reason,
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let jwt = Secret(self.assertion((now + JWT_LIFETIME).as_secs()).map_err(fail)?);
        let body = serde_json::json!({ "uid": self.uid, "token": jwt.0 }).to_string();
        let started = Instant::now();
        let mut resp = client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| fail(super::transport_cause(e, tls)))?;
        let status = resp.status();
        let mut reply = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| fail(super::transport_cause(e, tls)))?
        {
            if reply.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(fail(format!(
                    "unreadable reply (HTTP {status}): larger than {MAX_REPLY_BYTES} bytes"
                )));
            }
            reply.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let detail = error_detail(&reply, &jwt.0);
            let advice = match status.as_u16() {
                400 | 401 | 403 => ": check \"uid\" and \"private_key\" in IAMConfigFile",
                _ => "",
            };
            return Err(fail(format!("HTTP {status}{detail}{advice}")));
        }
        let doc: Json = serde_json::from_slice(&reply)
            .map_err(|_| fail(format!("unreadable reply (HTTP {status}): not JSON")))?;
        let Some(token) = doc.get("token").and_then(Json::as_str).filter(|t| !t.is_empty()) else {
            return Err(fail(format!(
                "unreadable reply (HTTP {status}): no \"token\" string in it"
            )));
        };
        let mut header = HeaderValue::from_str(&format!("token={token}")).map_err(|_| {
            fail("unusable reply: the token has characters not allowed in a header".to_owned())
        })?;
        header.set_sensitive(true);
        let serial = self.logins.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let lifetime = token_lifetime(token, now);
        tracing::info!(
            uid = %self.uid,
            endpoint = %self.endpoint,
            "IAM login succeeded in {} ms; renewing in {} s",
            started.elapsed().as_millis(),
            lifetime.as_secs()
        );
        Ok(Token { header, serial, renew_at: started + lifetime })
    }
}

/// The private key of a PEM file: PKCS#8 or PKCS#1, RSA.
fn rsa_key(pem: &[u8]) -> Result<RsaKeyPair, String> {
    for (kind, der) in tls::pem_blocks(pem)? {
        let parsed = match kind {
            SectionKind::PrivateKey => RsaKeyPair::from_pkcs8(&der),
            SectionKind::RsaPrivateKey => RsaKeyPair::from_der(&der),
            SectionKind::EcPrivateKey => {
                return Err("an EC key; RS256 needs an RSA key".to_owned());
            }
            _ => continue,
        };
        // KeyRejected says what is wrong (e.g. "InvalidEncoding"), not the key.
        return parsed.map_err(|e| match e.to_string().as_str() {
            "WrongAlgorithm" => "not an RSA key; RS256 needs an RSA key".to_owned(),
            reason => format!("not a usable RSA private key ({reason})"),
        });
    }
    Err(tls::no_key_reason(pem, "the value"))
}

/// How long a fresh token is used: until the assertion would have expired,
/// less [`RENEW_EARLY`]; sooner when the token is itself a JWT that expires
/// earlier.
fn token_lifetime(token: &str, now: Duration) -> Duration {
    let mut expires_in = JWT_LIFETIME;
    if let Some(exp) = jwt_exp(token) {
        expires_in = expires_in.min(Duration::from_secs(exp).saturating_sub(now));
    }
    if expires_in > 2 * RENEW_EARLY { expires_in - RENEW_EARLY } else { expires_in / 2 }
}

/// The `exp` claim of a JWT, read without checking it.
fn jwt_exp(token: &str) -> Option<u64> {
    let claims = token.split('.').nth(1)?;
    let bytes =
        data_encoding::BASE64URL_NOPAD.decode(claims.trim_end_matches('=').as_bytes()).ok()?;
    let doc: Json = serde_json::from_slice(&bytes).ok()?;
    let exp = doc.get("exp")?;
    exp.as_u64().or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// `: <code>: <description>` from an error reply (DC/OS sends `title`,
/// `description` and `code`), cut short, without our assertion.
fn error_detail(reply: &[u8], jwt: &str) -> String {
    let Ok(doc) = serde_json::from_slice::<Json>(reply) else {
        return String::new();
    };
    let parts: Vec<String> = ["code", "title", "description"]
        .iter()
        .filter_map(|k| doc.get(k).and_then(Json::as_str))
        .map(|s| {
            let s = s.replace(jwt, super::REDACTED);
            if s.chars().count() > 200 {
                s.chars().take(200).collect::<String>() + "…"
            } else {
                s
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(": ")) }
}

#[cfg(test)]
impl Iam {
    /// How many logins happened.
    fn login_count(&self) -> u64 {
        self.logins.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = data_encoding::BASE64.encode(der);
        let lines: Vec<&str> =
            b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    /// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo.
    fn pkcs1_of_pkcs8(der: &[u8]) -> Vec<u8> {
        fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
            let tag = b[0];
            let (len, hdr) = if b[1] < 0x80 {
                (b[1] as usize, 2)
            } else {
                let n = (b[1] & 0x7f) as usize;
                (b[2..2 + n].iter().fold(0usize, |a, x| a << 8 | *x as usize), 2 + n)
            };
            (tag, &b[hdr..hdr + len], &b[hdr + len..])
        }
        let (_, info, _) = tlv(der); // PrivateKeyInfo SEQUENCE
        let (_, _, rest) = tlv(info); // version
        let (_, _, rest) = tlv(rest); // algorithm
        let (tag, key, _) = tlv(rest); // privateKey OCTET STRING
        assert_eq!(tag, 0x04);
        key.to_vec()
    }

    fn account(dir: &std::path::Path, key_pem: &str) -> (Config, String) {
        let path = dir.join("iam.json");
        let doc = serde_json::json!({
            "UID": "mesos-dns",
            "private_key": key_pem,
            "login_endpoint": "https://leader.mesos/acs/api/v1/auth/login",
            "scheme": "RS256",
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        (Config::default(), path.to_string_lossy().into_owned())
    }

    fn verify(jwt: &str, public: &[u8]) -> Json {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = &data_encoding::BASE64URL_NOPAD;
        let header: Json =
            serde_json::from_slice(&b64.decode(parts[0].as_bytes()).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let sig = b64.decode(parts[2].as_bytes()).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("signature verifies");
        serde_json::from_slice(&b64.decode(parts[1].as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn signs_with_pkcs8_and_pkcs1_keys() {
        let dir = tempfile::tempdir().unwrap();
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        for key_pem in [
            pem("PRIVATE KEY", pkcs8.as_ref()),
            pem("RSA PRIVATE KEY", &pkcs1_of_pkcs8(pkcs8.as_ref())),
        ] {
            let (config, path) = account(dir.path(), &key_pem);
            let iam = Iam::new(&config, &path).unwrap();
            assert_eq!(iam.uid(), "mesos-dns");
            let jwt = iam.assertion(1_900_000_000).unwrap();
            let claims = verify(&jwt, &public);
            assert_eq!(claims, serde_json::json!({"uid": "mesos-dns", "exp": 1_900_000_000u64}));
            let debug = format!("{iam:?}");
            assert!(!debug.contains("PRIVATE KEY") && debug.contains("mesos-dns"), "{debug}");
            assert_eq!(iam.login_count(), 0);
        }
    }

    #[test]
    fn bad_account_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let path = dir.path().join("iam.json");
        let p = path.to_string_lossy().into_owned();
        let err = |doc: &str| {
            std::fs::write(&path, doc).unwrap();
            Iam::new(&config, &p).unwrap_err().to_string()
        };
        let e = Iam::new(&config, "/nonexistent/iam.json").unwrap_err().to_string();
        assert!(e.contains("IAMConfigFile") && e.contains("/nonexistent/iam.json"), "{e}");
        assert!(err("{").contains("not valid JSON"));
        assert!(err(r#"{"private_key":"x","login_endpoint":"http://a/"}"#).contains("\"uid\""));
        assert!(err(r#"{"uid":"u","login_endpoint":"http://a/"}"#).contains("\"private_key\""));
        let e = err(r#"{"uid":"u","private_key":"TOPSECRET","login_endpoint":"http://a/"}"#);
        assert!(e.contains("no private key") && !e.contains("TOPSECRET"), "{e}");
        let e = err(
            r#"{"uid":"u","private_key":"-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n","login_endpoint":"http://a/"}"#,
        );
        assert!(e.contains("private_key") && !e.contains("TOPSECRET"), "{e}");
        let e = err(r#"{"uid":"u","private_key":"k","login_endpoint":"leader.mesos/login"}"#);
        assert!(e.contains("login_endpoint"), "{e}");
        assert!(err(r#"{"uid":5}"#).contains("\"uid\" must be a string"));
    }

    #[test]
    fn lifetimes() {
        let now = Duration::from_secs(1_000_000);
        assert_eq!(token_lifetime("opaque", now), JWT_LIFETIME - RENEW_EARLY);
        let claims = data_encoding::BASE64URL_NOPAD.encode(br#"{"exp":1000120}"#);
        assert_eq!(token_lifetime(&format!("h.{claims}.s"), now), Duration::from_secs(60));
        let claims = data_encoding::BASE64URL_NOPAD.encode(br#"{"exp":1001800}"#);
        assert_eq!(token_lifetime(&format!("h.{claims}.s"), now), Duration::from_secs(1500));
    }

    #[test]
    fn error_details_are_short_and_clean() {
        let reply = br#"{"title":"Bad Request","description":"bad token abc.def.ghi","code":"ERR_INVALID_JWT"}"#;
        let d = error_detail(reply, "abc.def.ghi");
        assert_eq!(d, " (ERR_INVALID_JWT: Bad Request: bad token ***)");
        assert_eq!(error_detail(b"<html>", "x"), "");
    }
}
