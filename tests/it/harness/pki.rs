//! Certificates and keys made fresh for each run: a CA, a server
//! certificate for 127.0.0.1/localhost and client certificates, written as
//! PEM files; PEM and PKCS#1 by hand where rcgen does not write them.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

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

/// A certificate authority: signs the certificates of [`Pki`].
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pub pem: String,
}

/// A new CA named `name`.
pub fn new_ca(name: &str) -> Ca {
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

/// A CA, a server certificate signed by it, and a directory for PEM files
/// (the CA's is `ca.pem`).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
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

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        self.path(name)
    }

    /// A client certificate signed by `ca` written as `<name>.pem` and
    /// `<name>.key`; the key as PKCS#8 (ECDSA) or, with `rsa_pkcs1`, as a
    /// PKCS#1 RSA key. Returns the two paths.
    pub fn client_cert(&self, ca: &Ca, name: &str, rsa_pkcs1: bool) -> (String, String) {
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
    pub fn server_config(&self, client_ca: Option<&Ca>) -> rustls::ServerConfig {
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

/// `der` as a PEM block labelled `label`.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo.
pub fn pkcs1_of_pkcs8(der: &[u8]) -> Vec<u8> {
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
