//! TLS to the masters (`mesosHTTPSOn`): the CA bundle (`caCertFile`) and
//! the client certificate (`certFile` + `keyFile`), read and checked once at
//! start-up, and plain explanations of handshake failures.
//!
//! Key material never appears in an error: problems with the key file are
//! described, never quoted.

use std::error::Error as StdError;
use std::path::Path;

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, ConfigError};

/// The TLS settings read from the files the config names.
pub(super) struct TlsFiles {
    /// The CA certificates of `caCertFile` (empty: the system roots).
    pub roots: Vec<reqwest::Certificate>,
    /// The client certificate and key of `certFile` + `keyFile`.
    pub identity: Option<reqwest::Identity>,
}

/// What the explanations of handshake failures need to know.
#[derive(Debug, Clone, Default)]
pub(super) struct Context {
    /// `caCertFile`, when set.
    pub ca_file: Option<String>,
    /// `certFile`, when set.
    pub cert_file: Option<String>,
}

impl Context {
    pub(super) fn new(config: &Config) -> Context {
        let set = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Context { ca_file: set(&config.ca_cert_file), cert_file: set(&config.cert_file) }
    }
}

/// Reads `caCertFile`, `certFile` and `keyFile` (those set). As the original
/// does, they are read and checked even when `mesosHTTPSOn` is false.
pub(super) fn load(config: &Config) -> Result<TlsFiles, ConfigError> {
    let mut files = TlsFiles { roots: Vec::new(), identity: None };
    if !config.ca_cert_file.is_empty() {
        files.roots = ca_bundle(config, &config.ca_cert_file)?;
    }
    if !config.cert_file.is_empty() && !config.key_file.is_empty() {
        files.identity = Some(identity(config, &config.cert_file, &config.key_file)?);
    }
    Ok(files)
}

/// A bad file named by a config key, as a config error: `key` and the path,
/// then `reason`.
pub(super) fn file_error(config: &Config, key: &str, path: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        path: config.file.clone(),
        key: key.to_owned(),
        value: serde_json::to_string(path).unwrap_or_else(|_| format!("{path:?}")),
        reason,
    }
}

/// The bytes of the file at `path`.
pub(super) fn read(config: &Config, key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(Path::new(path))
        .map_err(|e| file_error(config, key, path, format!("cannot read the file: {e}")))
}

/// The PEM blocks of `bytes`, in order; a syntax error is described without
/// quoting the file.
pub(super) fn pem_blocks(bytes: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {}", pem_problem(&e)))
}

fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a block has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a block is not valid base64",
        pem::Error::SectionTooLarge => "a block is too large",
        _ => "unreadable",
    }
}

/// The certificates of a PEM CA bundle.
fn ca_bundle(config: &Config, path: &str) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    const KEY: &str = "caCertFile";
    let bytes = read(config, KEY, path)?;
    let fail = |reason: String| file_error(config, KEY, path, reason);
    let ders: Vec<Vec<u8>> = pem_blocks(&bytes)
        .map_err(fail)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| der)
        .collect();
    if ders.is_empty() {
        return Err(fail(
            "no certificate in the file (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)"
                .to_owned(),
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    let mut roots = Vec::with_capacity(ders.len());
    for (n, der) in ders.into_iter().enumerate() {
        store
            .add(CertificateDer::from(der.as_slice()))
            .map_err(|e| fail(format!("certificate {} is not usable as a CA: {e}", n + 1)))?;
        let cert = reqwest::Certificate::from_der(&der)
            .map_err(|e| fail(format!("certificate {}: {}", n + 1, chain(&e))))?;
        roots.push(cert);
    }
    Ok(roots)
}

/// The client certificate chain of `certFile` with the private key of
/// `keyFile` (PKCS#8, PKCS#1 RSA or SEC1 EC), checked to belong together.
fn identity(
    config: &Config,
    cert_path: &str,
    key_path: &str,
) -> Result<reqwest::Identity, ConfigError> {
    const CERT: &str = "certFile";
    const KEY: &str = "keyFile";
    let cert_bytes = read(config, CERT, cert_path)?;
    let certs: Vec<CertificateDer<'static>> = pem_blocks(&cert_bytes)
        .map_err(|r| file_error(config, CERT, cert_path, r))?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if certs.is_empty() {
        return Err(file_error(
            config,
            CERT,
            cert_path,
            "no certificate in the file (expected a PEM \"-----BEGIN CERTIFICATE-----\" block)"
                .to_owned(),
        ));
    }

    let key_bytes = read(config, KEY, key_path)?;
    let key_fail = |reason: String| file_error(config, KEY, key_path, reason);
    let key = private_key(&key_bytes).map_err(key_fail)?;

    // The same checks rustls makes when the client is built, here so the
    // error can name the file.
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    rustls::sign::CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider).map_err(
        |e| match e {
            rustls::Error::InconsistentKeys(_) => key_fail(format!(
                "the private key does not belong to the certificate in certFile {cert_path:?}"
            )),
            _ => key_fail(format!("unusable private key: {e}")),
        },
    )?;

    let mut pem = String::new();
    for cert in &certs {
        pem_encode(&mut pem, "CERTIFICATE", cert.as_ref());
    }
    match &key {
        PrivateKeyDer::Pkcs1(k) => pem_encode(&mut pem, "RSA PRIVATE KEY", k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => pem_encode(&mut pem, "EC PRIVATE KEY", k.secret_sec1_der()),
        PrivateKeyDer::Pkcs8(k) => pem_encode(&mut pem, "PRIVATE KEY", k.secret_pkcs8_der()),
        _ => return Err(key_fail("unsupported private key format".to_owned())),
    }
    // Identity's own error texts quote nothing of the input.
    reqwest::Identity::from_pem(pem.as_bytes())
        .map_err(|e| key_fail(format!("unusable certificate and key: {}", chain(&e))))
}

/// The first private key of a PEM file.
fn private_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    for (kind, der) in pem_blocks(bytes)? {
        match kind {
            SectionKind::PrivateKey => return Ok(PrivateKeyDer::Pkcs8(der.into())),
            SectionKind::RsaPrivateKey => return Ok(PrivateKeyDer::Pkcs1(der.into())),
            SectionKind::EcPrivateKey => return Ok(PrivateKeyDer::Sec1(der.into())),
            _ => {}
        }
    }
    Err(no_key_reason(bytes, "the file"))
}

/// Why PEM text (`place`: "the file", "the value") has no usable private key.
pub(super) fn no_key_reason(bytes: &[u8], place: &str) -> String {
    if bytes.windows(9).any(|w| w == b"ENCRYPTED") {
        "the private key is encrypted; an unencrypted PEM key is needed".to_owned()
    } else {
        format!(
            "no private key in {place} (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)"
        )
    }
}

/// Appends one PEM block.
fn pem_encode(out: &mut String, label: &str, der: &[u8]) {
    let b64 = data_encoding::BASE64.encode(der);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// An error and its causes, `a: b: c`, a cause left out when the one before
/// already says it.
pub(super) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// The rustls error in `err`'s chain, if any. `io::Error` hides the error it
/// wraps from `source()` (and I/O errors get wrapped in I/O errors), so
/// those are looked into as well.
pub(super) fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        let mut inner: Option<&(dyn StdError + 'static)> = Some(e);
        while let Some(i) = inner {
            if let Some(t) = i.downcast_ref::<rustls::Error>() {
                return Some(t);
            }
            inner = i
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|wrapped| wrapped as &(dyn StdError + 'static));
        }
        cur = e.source();
    }
    None
}

impl Context {
    /// "TLS handshake failed: <rustls error>", then what to do about it.
    pub(super) fn explain(&self, err: &rustls::Error) -> String {
        use rustls::{AlertDescription as Alert, CertificateError as Cert, Error as E};
        let hint: Option<String> = match err {
            E::InvalidCertificate(Cert::UnknownIssuer) => Some(match &self.ca_file {
                Some(ca) => format!(
                    "the master's certificate is not signed by a CA in caCertFile {ca:?}"
                ),
                None => "the master's certificate is not signed by a CA this host trusts: set caCertFile to the cluster's CA bundle".to_owned(),
            }),
            E::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
                Some("the master's certificate is not issued for the address used to reach it (list masters by a name or IP the certificate holds)".to_owned())
            }
            E::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
                Some("the master's certificate has expired".to_owned())
            }
            E::InvalidCertificate(Cert::NotValidYet | Cert::NotValidYetContext { .. }) => {
                Some("the master's certificate is not valid yet (check the clocks)".to_owned())
            }
            E::AlertReceived(Alert::CertificateRequired) => Some(match &self.cert_file {
                None => "the master requires a client certificate: set certFile and keyFile".to_owned(),
                Some(c) => format!("the master wants a client certificate and did not get certFile {c:?}"),
            }),
            E::AlertReceived(
                Alert::BadCertificate
                | Alert::UnknownCA
                | Alert::CertificateUnknown
                | Alert::UnsupportedCertificate
                | Alert::CertificateExpired
                | Alert::CertificateRevoked
                | Alert::AccessDenied
                | Alert::HandshakeFailure,
            ) => Some(match &self.cert_file {
                Some(c) => format!("the master rejected our client certificate (certFile {c:?})"),
                None => "the master refused the connection; if it requires a client certificate, set certFile and keyFile".to_owned(),
            }),
            E::InvalidMessage(_) => {
                Some("the master did not answer in TLS: is it serving HTTPS? (mesosHTTPSOn)".to_owned())
            }
            _ => None,
        };
        match hint {
            Some(hint) => format!("TLS handshake failed: {err}: {hint}"),
            None => format!("TLS handshake failed: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip() {
        let mut pem = String::new();
        pem_encode(&mut pem, "CERTIFICATE", &[7u8; 100]);
        let blocks = pem_blocks(pem.as_bytes()).unwrap();
        assert_eq!(blocks, vec![(SectionKind::Certificate, vec![7u8; 100])]);
    }

    #[test]
    fn pem_errors_quote_nothing() {
        let bad = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0!!!\n-----END PRIVATE KEY-----\n";
        let e = pem_blocks(bad).unwrap_err();
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let e = private_key(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
        let e = private_key(b"nothing here").unwrap_err();
        assert!(e.contains("no private key"), "{e}");
    }

    #[test]
    fn explanations() {
        let ctx = Context { ca_file: Some("/ca.pem".into()), cert_file: None };
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let text = ctx.explain(&e);
        assert!(text.contains("UnknownIssuer") && text.contains("/ca.pem"), "{text}");
        let e = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert!(ctx.explain(&e).contains("set certFile and keyFile"));
    }

    #[test]
    fn rustls_error_inside_io_error() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(rustls_error(&io).is_some());
        assert_eq!(chain(&io), "invalid peer certificate: UnknownIssuer");
        let twice = std::io::Error::other(io);
        assert!(rustls_error(&twice).is_some());
    }
}
