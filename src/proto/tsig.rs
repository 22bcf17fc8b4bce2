//! TSIG, shared-key transaction signatures (RFC 8945), for zone transfers
//! and NOTIFY.
//!
//! This module owns all of TSIG. That covers the keys and the keyring
//! read from the config, and finding and checking the TSIG record at the
//! end of a received message. On the serving side it verifies signed
//! requests (queries, AXFR/IXFR requests, NOTIFY) and builds the error
//! answers of RFC 8945 §5.3.2. It signs the responses, including every
//! message of a multi-message AXFR/IXFR response (§5.3.1). On the sending
//! side it signs our own NOTIFY and checks the answer to it.
//!
//! The MACs come from `aws_lc_rs::hmac` and are compared in constant time.
//! Messages are plain wire bytes (for TCP, without the two-byte length
//! prefix). Nothing here panics on what it reads: a malformed record is
//! [`Failure::FormErr`].
//!
//! What the MAC covers (RFC 8945 §4.3), as [`Signer`] and
//! [`verify_request`] compute it:
//!
//! - a request: the message without its TSIG record (ARCOUNT one lower,
//!   the TSIG's Original ID in place of the header's ID), then the TSIG
//!   variables: key name and algorithm name in canonical (lower-case,
//!   uncompressed) wire form, class ANY, TTL 0, time signed (48 bits),
//!   fudge, error, other length, other data;
//! - the first (or only) message of a response: the request's MAC
//!   (two-byte length, then the MAC as received), then as for a request;
//! - each later message of a multi-message response: the previous
//!   message's MAC (length-prefixed), the message, then the timers only
//!   (time signed, fudge). We sign every message.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::{constant_time, hmac};

use super::rcode::{FORMERR, NOTAUTH, REFUSED};
use super::rtype::TSIG;
use super::{CLASS_ANY, header, name_text, skip_name, skip_rr, u16_at, wire_name};
/// Time signed is a 48-bit field.
const TIME_MASK: u64 = 0xFFFF_FFFF_FFFF;
/// Offset of ARCOUNT in the header.
const ARCOUNT: usize = header::ANCOUNT + 2 * header::ADDITIONAL;

/// The fudge (allowed clock difference, in seconds) of the TSIG records we
/// make.
pub const FUDGE: u16 = 300;

/// The time to sign and verify at: seconds since the epoch, by this
/// host's clock.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// TSIG error codes, the Error field of a TSIG record (RFC 8945 §3).
pub mod error {
    /// No error.
    pub const NOERROR: u16 = 0;
    /// The MAC did not verify.
    pub const BADSIG: u16 = 16;
    /// The key (or its algorithm) is not known.
    pub const BADKEY: u16 = 17;
    /// The time signed is outside the fudge.
    pub const BADTIME: u16 = 18;
    /// The MAC is truncated more than local policy allows.
    pub const BADTRUNC: u16 = 22;
}

/// A TSIG algorithm: an HMAC over one of the SHA hashes (RFC 8945 §6).
/// `hmac-sha256` is the default and the one to use; `hmac-sha1` is there
/// for old peers (RFC 8945: mandatory to implement, not recommended).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `hmac-sha1`.
    HmacSha1,
    /// `hmac-sha224`.
    HmacSha224,
    /// `hmac-sha256`.
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

impl Algorithm {
    /// Every algorithm, in the order they are listed in errors.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::HmacSha256,
        Algorithm::HmacSha384,
        Algorithm::HmacSha512,
        Algorithm::HmacSha224,
        Algorithm::HmacSha1,
    ];

    /// The algorithm's name as text, as in the config (`"hmac-sha256"`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha1 => "hmac-sha1",
            Algorithm::HmacSha224 => "hmac-sha224",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm's name in canonical wire form (lower case, ending in
    /// the root label), as TSIG records carry it.
    pub fn wire_name(self) -> &'static [u8] {
        match self {
            Algorithm::HmacSha1 => b"\x09hmac-sha1\x00",
            Algorithm::HmacSha224 => b"\x0bhmac-sha224\x00",
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha384 => b"\x0bhmac-sha384\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The algorithm a wire name (uncompressed, any case) names, if we
    /// implement it.
    pub fn from_wire(name: &[u8]) -> Option<Self> {
        // Length bytes are below 64, so ASCII case folding leaves them be.
        Self::ALL.into_iter().find(|a| a.wire_name().eq_ignore_ascii_case(name))
    }

    /// The algorithm a text name (`"hmac-sha256"`, any case, final dot or
    /// not) names, if we implement it.
    pub fn from_text(name: &str) -> Option<Self> {
        let name = name.strip_suffix('.').unwrap_or(name);
        Self::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The length of a full MAC, the hash's output length.
    pub fn mac_len(self) -> usize {
        self.hmac().tag_len()
    }

    /// The shortest truncated MAC we accept: the larger of 10 bytes and
    /// half the hash (RFC 8945 §5.2.2.1; shorter is FORMERR).
    pub fn min_mac_len(self) -> usize {
        (self.mac_len() / 2).max(10)
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Algorithm::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Algorithm::HmacSha224 => hmac::HMAC_SHA224,
            Algorithm::HmacSha256 => hmac::HMAC_SHA256,
            Algorithm::HmacSha384 => hmac::HMAC_SHA384,
            Algorithm::HmacSha512 => hmac::HMAC_SHA512,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A shared key: its name (lower-case wire form), algorithm and secret.
/// `Debug` shows the name and algorithm only; keys are equal when all
/// three are.
#[derive(Clone)]
pub struct Key {
    name: Box<[u8]>,
    algorithm: Algorithm,
    /// Kept for comparing keys (a config reload) only.
    secret: Box<[u8]>,
    hmac: hmac::Key,
}

impl Key {
    /// A key from its parts: a name as text (`"xfr-key"`, final dot or
    /// not) and the secret's bytes. Errors (never showing the secret) for a
    /// name that is not a DNS name, and for an empty secret.
    pub fn new(name: &str, algorithm: Algorithm, secret: &[u8]) -> Result<Key, String> {
        let wire = match wire_name(name) {
            Some(wire) if wire.len() > 1 => wire,
            _ => return Err(format!("TSIG key name {name:?} is not a domain name")),
        };
        if secret.is_empty() {
            return Err(format!("TSIG key {name:?}: the secret is empty"));
        }
        Ok(Key {
            name: wire.into_boxed_slice(),
            algorithm,
            secret: secret.into(),
            hmac: hmac::Key::new(algorithm.hmac(), secret),
        })
    }

    /// A key from the config's form: its name, and a value that is the
    /// base64 secret (`hmac-sha256`), or an algorithm, a colon and the
    /// secret (`"hmac-sha512:BASE64"`). The error text never contains
    /// the secret.
    pub fn parse(name: &str, value: &str) -> Result<Key, String> {
        // Base64 has no colon, so the first one ends the algorithm.
        let (algorithm, secret) = match value.trim().split_once(':') {
            None => (Algorithm::HmacSha256, value.trim()),
            Some((algorithm, secret)) => {
                let Some(algorithm) = Algorithm::from_text(algorithm.trim()) else {
                    let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                    return Err(format!(
                        "TSIG key {name:?}: unknown algorithm (expected one of {})",
                        known.join(", ")
                    ));
                };
                (algorithm, secret.trim())
            }
        };
        let secret = data_encoding::BASE64.decode(secret.as_bytes()).map_err(|e| {
            format!(
                "TSIG key {name:?}: the secret is not valid base64 ({:?} at byte {})",
                e.kind, e.position
            )
        })?;
        Key::new(name, algorithm, &secret)
    }

    /// The key's name in lower-case wire form.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The key's name as text, with the final dot.
    pub fn name_text(&self) -> String {
        name_text(&self.name)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A MAC under this key, started.
    fn context(&self) -> hmac::Context {
        hmac::Context::with_key(&self.hmac)
    }

    /// The length of the TSIG record we append when signing with this key
    /// (no error, a full MAC): what to leave room for in a message.
    pub fn tsig_len(&self) -> usize {
        record_len(&self.name, self.algorithm.wire_name(), self.algorithm.mac_len(), 0)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.name == other.name
            && self.algorithm == other.algorithm
            && constant_time::verify_slices_are_equal(&self.secret, &other.secret).is_ok()
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name_text())
            .field("algorithm", &self.algorithm.name())
            .finish_non_exhaustive()
    }
}

/// The keys we know, by name (case-insensitive).
#[derive(Clone, Default)]
pub struct Keyring {
    keys: HashMap<Box<[u8]>, Arc<Key>>,
}

impl Keyring {
    /// A keyring of these keys. Of two with the same name (in any case),
    /// the later one stays: the config should refuse such twins.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Keyring {
        Keyring { keys: keys.into_iter().map(|k| (k.name.clone(), Arc::new(k))).collect() }
    }

    /// The key of this wire name (uncompressed, any case).
    pub fn get(&self, name: &[u8]) -> Option<&Arc<Key>> {
        // Length bytes are below 64, so ASCII case folding leaves them be.
        if name.iter().any(u8::is_ascii_uppercase) {
            self.keys.get(name.to_ascii_lowercase().as_slice())
        } else {
            self.keys.get(name)
        }
    }

    /// The key named by this text name (any case, final dot or not).
    pub fn get_text(&self, name: &str) -> Option<&Arc<Key>> {
        self.get(&wire_name(name)?)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys.values()).finish()
    }
}

/// A TSIG record read from a message (RFC 8945 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tsig<'a> {
    /// Where the record starts: the length of the message without it.
    pub start: usize,
    /// The key name (the owner), decompressed, in lower-case wire form.
    pub key_name: Vec<u8>,
    /// The algorithm name, uncompressed wire form, as sent.
    pub algorithm: &'a [u8],
    /// When the message was signed, seconds since the epoch (48 bits).
    pub time_signed: u64,
    /// The allowed clock difference, seconds.
    pub fudge: u16,
    /// The MAC (empty in unsigned error responses).
    pub mac: &'a [u8],
    /// The message ID the MAC was computed with.
    pub original_id: u16,
    /// The TSIG error ([`error`]).
    pub error: u16,
    /// Other data: in a BADTIME response, the server's time (48 bits).
    pub other: &'a [u8],
}

/// A reader over a byte slice, every read checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    fn u48(&mut self) -> Option<u64> {
        Some(self.take(6)?.iter().fold(0u64, |t, &b| t << 8 | u64::from(b)))
    }

    /// An uncompressed name (any pointer, or a reserved label type, is
    /// `None`), as it is.
    fn name(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        loop {
            let len = *self.bytes.get(self.at)?;
            if len & 0xC0 != 0 {
                return None;
            }
            self.take(1 + usize::from(len))?;
            if self.at - start > 255 {
                return None;
            }
            if len == 0 {
                return self.bytes.get(start..self.at);
            }
        }
    }
}

/// Read a possibly compressed name at `at`: lower-case wire form. A
/// pointer must point before itself, so a loop must pass through labels,
/// which grow the name past 255 bytes: the walk ends.
fn read_name(message: &[u8], mut at: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let len = *message.get(at)?;
        match len {
            0 => {
                out.push(0);
                return (out.len() <= 255).then_some(out);
            }
            l if l & 0xC0 == 0xC0 => {
                let target = usize::from(u16_at(message, at)? & 0x3FFF);
                if target >= at {
                    return None;
                }
                at = target;
            }
            l if l & 0xC0 != 0 => return None,
            l => {
                let label = message.get(at..at + 1 + usize::from(l))?;
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                if out.len() > 255 {
                    return None;
                }
                at += label.len();
            }
        }
    }
}

/// Find the TSIG record of a message: the last record of the additional
/// section, ending the message. `Ok(None)` if there is none;
/// [`Failure::FormErr`] if the records cannot be walked, if a TSIG record
/// is anywhere else, or if it cannot be read (RFC 8945 §5.2).
pub fn find(message: &[u8]) -> Result<Option<Tsig<'_>>, Failure> {
    let count = |at| u16_at(message, at).map(u32::from).ok_or(Failure::FormErr);
    let questions = count(header::QDCOUNT)?;
    let before_additional = count(header::count_offset(header::ANSWER))?
        + count(header::count_offset(header::AUTHORITY))?;
    let records = before_additional + count(ARCOUNT)?;
    let mut at = header::LEN;
    for _ in 0..questions {
        at = skip_name(message, at).ok_or(Failure::FormErr)? + 4;
    }
    if at > message.len() {
        return Err(Failure::FormErr);
    }
    for index in 0..records {
        let owner_end = skip_name(message, at).ok_or(Failure::FormErr)?;
        let next = skip_rr(message, at).ok_or(Failure::FormErr)?;
        if u16_at(message, owner_end) == Some(TSIG) {
            let last = index + 1 == records && index >= before_additional;
            if !last || next != message.len() {
                return Err(Failure::FormErr);
            }
            return read_tsig(message, at, owner_end).map(Some).ok_or(Failure::FormErr);
        }
        at = next;
    }
    Ok(None)
}

/// Read the TSIG record at `start`, its owner name ending at `owner_end`
/// and the record ending the message.
fn read_tsig(message: &[u8], start: usize, owner_end: usize) -> Option<Tsig<'_>> {
    let key_name = read_name(message, start)?;
    let mut fixed = Reader { bytes: message, at: owner_end };
    let (_type, class) = (fixed.u16()?, fixed.u16()?);
    let ttl = (fixed.u16()?, fixed.u16()?);
    let rdlength = usize::from(fixed.u16()?);
    if class != CLASS_ANY || ttl != (0, 0) || fixed.at + rdlength != message.len() {
        return None;
    }
    let mut rdata = Reader { bytes: message, at: fixed.at };
    let algorithm = rdata.name()?;
    let time_signed = rdata.u48()?;
    let fudge = rdata.u16()?;
    let mac_len = usize::from(rdata.u16()?);
    let mac = rdata.take(mac_len)?;
    let original_id = rdata.u16()?;
    let error = rdata.u16()?;
    let other_len = usize::from(rdata.u16()?);
    let other = rdata.take(other_len)?;
    (rdata.at == message.len()).then_some(Tsig {
        start,
        key_name,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// The key a failed request named, to echo in the error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestKey {
    /// The key name, lower-case wire form.
    pub name: Vec<u8>,
    /// The algorithm name, lower-case wire form (maybe one we do not
    /// implement).
    pub algorithm: Vec<u8>,
}

impl RequestKey {
    fn of(tsig: &Tsig<'_>) -> Self {
        RequestKey { name: tsig.key_name.clone(), algorithm: tsig.algorithm.to_ascii_lowercase() }
    }
}

/// A request's MAC that verified, with a time signed outside the fudge:
/// what the signed BADTIME answer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateRequest {
    /// The key (known, and verified).
    pub key: RequestKey,
    /// The request's MAC, as received.
    pub mac: Vec<u8>,
    /// The request's time signed.
    pub time_signed: u64,
}

/// What verifying a signed request found wrong (RFC 8945 §5.2). Answer
/// with [`error_response`]: FORMERR for a TSIG record that cannot be read
/// or is not the last additional record; otherwise NOTAUTH with the TSIG
/// error, unsigned for BADKEY and BADSIG, signed for BADTIME.
///
/// We accept every MAC truncation RFC 8945 allows (see
/// [`Algorithm::min_mac_len`]), so there is no BADTRUNC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The TSIG record is malformed, misplaced or its MAC has a length
    /// RFC 8945 forbids: FORMERR, no TSIG in the answer.
    FormErr,
    /// There is no TSIG record at all (call [`verify_request`] for signed
    /// messages; [`find`] tells): REFUSED, no TSIG in the answer.
    Unsigned,
    /// The key is unknown, or known with another algorithm: NOTAUTH/BADKEY.
    BadKey(RequestKey),
    /// The MAC does not verify: NOTAUTH/BADSIG.
    BadSig(RequestKey),
    /// The MAC verifies but the time signed is outside the fudge:
    /// NOTAUTH/BADTIME, signed.
    BadTime(LateRequest),
}

impl Failure {
    /// The rcode to answer with: FORMERR, REFUSED or NOTAUTH.
    pub fn rcode(&self) -> u8 {
        match self {
            Failure::FormErr => FORMERR,
            Failure::Unsigned => REFUSED,
            _ => NOTAUTH,
        }
    }

    /// The TSIG error to answer with ([`error`]; none for FORMERR and
    /// REFUSED).
    pub fn tsig_error(&self) -> u16 {
        match self {
            Failure::FormErr | Failure::Unsigned => error::NOERROR,
            Failure::BadKey(_) => error::BADKEY,
            Failure::BadSig(_) => error::BADSIG,
            Failure::BadTime(_) => error::BADTIME,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::FormErr => f.write_str("malformed or misplaced TSIG record"),
            Failure::Unsigned => f.write_str("no TSIG record"),
            Failure::BadKey(key) => write!(
                f,
                "unknown TSIG key {} ({})",
                name_text(&key.name),
                name_text(&key.algorithm).trim_end_matches('.')
            ),
            Failure::BadSig(key) => write!(f, "bad TSIG signature (key {})", name_text(&key.name)),
            Failure::BadTime(late) => write!(
                f,
                "TSIG time signed {} is outside the fudge (key {})",
                late.time_signed,
                name_text(&late.key.name)
            ),
        }
    }
}

impl std::error::Error for Failure {}

/// What checking the response to a request we signed found wrong
/// ([`Signer::verify_response`], RFC 8945 §5.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The response has no TSIG record.
    Unsigned,
    /// Its TSIG record is malformed or misplaced.
    Malformed,
    /// It is signed with another key or algorithm than the request.
    WrongKey,
    /// Its MAC does not verify.
    BadSig,
    /// Its time signed is outside its fudge of our clock.
    BadTime {
        /// The response's time signed.
        time_signed: u64,
    },
    /// The server answered with a TSIG error ([`error`]): it did not accept
    /// our signature.
    Rejected {
        /// The TSIG error.
        error: u16,
        /// For BADTIME, the server's clock (from a verified response).
        server_time: Option<u64>,
    },
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Unsigned => f.write_str("the response is not signed"),
            ResponseError::Malformed => f.write_str("the response's TSIG record is malformed"),
            ResponseError::WrongKey => f.write_str("the response is signed with another key"),
            ResponseError::BadSig => f.write_str("the response's TSIG signature does not verify"),
            ResponseError::BadTime { time_signed } => {
                write!(f, "the response's TSIG time signed {time_signed} is outside the fudge")
            }
            ResponseError::Rejected { error, server_time } => {
                let name = match *error {
                    error::BADSIG => "BADSIG",
                    error::BADKEY => "BADKEY",
                    error::BADTIME => "BADTIME",
                    error::BADTRUNC => "BADTRUNC",
                    _ => "error",
                };
                write!(f, "the server rejected our TSIG: {name} ({error})")?;
                match server_time {
                    Some(t) => write!(f, ", server time {t}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for ResponseError {}

/// Where a [`Signer`] is in its exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Signs outgoing requests; `prior` is the MAC of the last one.
    Request,
    /// Signs the first message of a response; `prior` is the request's MAC.
    FirstResponse,
    /// Signs a later message; `prior` is the previous message's MAC.
    LaterResponse,
}

/// Signs the response(s) to one verified request, or signs an outgoing
/// request and checks its response.
#[derive(Clone, Debug)]
pub struct Signer {
    key: Arc<Key>,
    state: State,
    /// The MAC the next one chains to (see [`State`]).
    prior: Vec<u8>,
}

impl Signer {
    /// A signer for our own requests (the NOTIFY we send), signed with
    /// `key`.
    pub fn for_request(key: Arc<Key>) -> Signer {
        Signer { key, state: State::Request, prior: Vec::new() }
    }

    /// The key it signs with.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The length of the TSIG record [`sign`](Self::sign) appends: what to
    /// leave room for in each message.
    pub fn tsig_len(&self) -> usize {
        self.key.tsig_len()
    }

    /// Append a TSIG record to `message` (a complete DNS message without
    /// one) and count it in ARCOUNT; the Original ID is the message's ID.
    ///
    /// A response signer signs the first message over the request's MAC,
    /// the message and all the TSIG variables, and each later message of a
    /// multi-message response (AXFR/IXFR over TCP, RFC 8945 §5.3.1) over
    /// the previous MAC, the message and the timers; call it on every
    /// message, in order. A request signer signs the message and all the
    /// variables, and remembers the MAC for
    /// [`verify_response`](Self::verify_response).
    ///
    /// A message shorter than a header, or whose ARCOUNT is full, is left
    /// unsigned.
    pub fn sign(&mut self, message: &mut Vec<u8>, now: u64) {
        let Some(id) = u16_at(message, 0) else { return };
        if message.len() < header::LEN || u16_at(message, ARCOUNT) == Some(u16::MAX) {
            return;
        }
        let time = now & TIME_MASK;
        let vars = Variables { time_signed: time, fudge: FUDGE, error: error::NOERROR, other: &[] };
        let mut mac = self.key.context();
        if self.state != State::Request {
            chain(&mut mac, &self.prior);
        }
        mac.update(message);
        if self.state == State::LaterResponse {
            timers(&mut mac, time, FUDGE);
        } else {
            variables(&mut mac, &self.key, &vars);
        }
        let tag = mac.sign();
        let record = Record {
            owner: &self.key.name,
            algorithm: self.key.algorithm.wire_name(),
            mac: tag.as_ref(),
            original_id: id,
            vars,
        };
        if push_record(message, &record) {
            self.prior = tag.as_ref().to_vec();
            if self.state == State::FirstResponse {
                self.state = State::LaterResponse;
            }
        }
    }

    /// Check the (single-message) response to the request this signer
    /// signed last (the answer to our NOTIFY), at time `now`.
    pub fn verify_response(&self, response: &[u8], now: u64) -> Result<(), ResponseError> {
        let tsig = match find(response) {
            Ok(Some(tsig)) => tsig,
            Ok(None) => return Err(ResponseError::Unsigned),
            Err(_) => return Err(ResponseError::Malformed),
        };
        let algorithm = self.key.algorithm;
        if tsig.key_name != *self.key.name
            || Algorithm::from_wire(tsig.algorithm) != Some(algorithm)
        {
            return Err(ResponseError::WrongKey);
        }
        if tsig.error != error::NOERROR && tsig.mac.is_empty() {
            // An unsigned error (BADKEY, BADSIG): nothing to verify.
            return Err(ResponseError::Rejected { error: tsig.error, server_time: None });
        }
        if !(algorithm.min_mac_len()..=algorithm.mac_len()).contains(&tsig.mac.len()) {
            return Err(ResponseError::Malformed);
        }
        if !received_mac_matches(&self.key, Some(&self.prior), response, &tsig) {
            return Err(ResponseError::BadSig);
        }
        if tsig.error != error::NOERROR {
            let server_time = (tsig.error == error::BADTIME && tsig.other.len() == 6)
                .then(|| tsig.other.iter().fold(0u64, |t, &b| t << 8 | u64::from(b)));
            return Err(ResponseError::Rejected { error: tsig.error, server_time });
        }
        if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
            return Err(ResponseError::BadTime { time_signed: tsig.time_signed });
        }
        Ok(())
    }
}

/// The TSIG variables after the names (RFC 8945 §4.3.3).
struct Variables<'a> {
    time_signed: u64,
    fudge: u16,
    error: u16,
    other: &'a [u8],
}

/// The 48-bit wire form of a time.
fn u48(time: u64) -> [u8; 6] {
    let [_, _, a, b, c, d, e, f] = time.to_be_bytes();
    [a, b, c, d, e, f]
}

/// Add a prior MAC (the request's, or the previous message's): its
/// two-byte length, then the MAC.
fn chain(mac: &mut hmac::Context, prior: &[u8]) {
    mac.update(&(prior.len() as u16).to_be_bytes());
    mac.update(prior);
}

/// Add all the TSIG variables, names from `key` (canonical).
fn variables(mac: &mut hmac::Context, key: &Key, vars: &Variables<'_>) {
    mac.update(&key.name);
    mac.update(&CLASS_ANY.to_be_bytes());
    mac.update(&0u32.to_be_bytes());
    mac.update(key.algorithm.wire_name());
    timers(mac, vars.time_signed, vars.fudge);
    mac.update(&vars.error.to_be_bytes());
    mac.update(&(vars.other.len() as u16).to_be_bytes());
    mac.update(vars.other);
}

/// Add the timers only (a later message of a multi-message response).
fn timers(mac: &mut hmac::Context, time_signed: u64, fudge: u16) {
    mac.update(&u48(time_signed));
    mac.update(&fudge.to_be_bytes());
}

/// Whether the MAC of a received message (request, or the first message of
/// a response when `prior` is given) verifies with `key`: over the message
/// without its TSIG record, ARCOUNT one lower and the Original ID in the
/// header, then all the variables. A truncated MAC is compared with as
/// many bytes of ours; the caller has checked its length.
fn received_mac_matches(key: &Key, prior: Option<&[u8]>, message: &[u8], tsig: &Tsig<'_>) -> bool {
    let Some(header) = message.get(..header::LEN) else { return false };
    let Some(body) = message.get(header::LEN..tsig.start) else { return false };
    let Some(arcount) = u16_at(message, ARCOUNT).and_then(|n| n.checked_sub(1)) else {
        return false;
    };
    let mut head = [0u8; header::LEN];
    head.copy_from_slice(header);
    let [id0, id1] = tsig.original_id.to_be_bytes();
    let [ar0, ar1] = arcount.to_be_bytes();
    head[0] = id0;
    head[1] = id1;
    head[ARCOUNT] = ar0;
    head[ARCOUNT + 1] = ar1;

    let mut mac = key.context();
    if let Some(prior) = prior {
        chain(&mut mac, prior);
    }
    mac.update(&head);
    mac.update(body);
    let vars = Variables {
        time_signed: tsig.time_signed,
        fudge: tsig.fudge,
        error: tsig.error,
        other: tsig.other,
    };
    variables(&mut mac, key, &vars);
    let ours = mac.sign();
    ours.as_ref()
        .get(..tsig.mac.len())
        .is_some_and(|ours| constant_time::verify_slices_are_equal(ours, tsig.mac).is_ok())
}

/// Verify a signed request (a query, an AXFR/IXFR request or a NOTIFY)
/// with `keyring` at time `now` (seconds since the epoch), in the order of
/// RFC 8945 §5.2: the record's form, the key, the MAC, the time.
///
/// On success, the signer for the response(s). A message without a TSIG
/// record is [`Failure::Unsigned`].
pub fn verify_request(keyring: &Keyring, message: &[u8], now: u64) -> Result<Signer, Failure> {
    let Some(tsig) = find(message)? else { return Err(Failure::Unsigned) };
    let algorithm = Algorithm::from_wire(tsig.algorithm);
    let Some(key) = keyring.get(&tsig.key_name).filter(|k| Some(k.algorithm) == algorithm) else {
        return Err(Failure::BadKey(RequestKey::of(&tsig)));
    };
    let algorithm = key.algorithm;
    if !(algorithm.min_mac_len()..=algorithm.mac_len()).contains(&tsig.mac.len()) {
        return Err(Failure::FormErr);
    }
    if !received_mac_matches(key, None, message, &tsig) {
        return Err(Failure::BadSig(RequestKey::of(&tsig)));
    }
    if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        return Err(Failure::BadTime(LateRequest {
            key: RequestKey::of(&tsig),
            mac: tsig.mac.to_vec(),
            time_signed: tsig.time_signed,
        }));
    }
    Ok(Signer { key: Arc::clone(key), state: State::FirstResponse, prior: tsig.mac.to_vec() })
}

/// Turn `reply` (a response already built, header and question, with the
/// request's ID) into the error response for a failed verification
/// (RFC 8945 §5.3.2): set its rcode, and for NOTAUTH append the TSIG
/// record with the error. For BADKEY and BADSIG that record is unsigned
/// (empty MAC) and names the request's key; for BADTIME it is signed
/// (over the request's MAC, the reply and all the variables) with the
/// request's time signed and our time, `now`, as Other Data, so the
/// client can verify it and see our clock (should the key have left
/// `keyring` meanwhile, it goes unsigned). FORMERR and REFUSED get no TSIG
/// record.
pub fn error_response(reply: &mut Vec<u8>, failure: &Failure, keyring: &Keyring, now: u64) {
    set_rcode(reply, failure.rcode());
    let Some(id) = u16_at(reply, 0) else { return };
    let now = now & TIME_MASK;
    let unsigned = |reply: &mut Vec<u8>, key: &RequestKey, other: &[u8]| {
        let record = Record {
            owner: &key.name,
            algorithm: &key.algorithm,
            mac: &[],
            original_id: id,
            vars: Variables { time_signed: now, fudge: FUDGE, error: failure.tsig_error(), other },
        };
        push_record(reply, &record);
    };
    match failure {
        Failure::FormErr | Failure::Unsigned => {}
        Failure::BadKey(key) | Failure::BadSig(key) => unsigned(reply, key, &[]),
        Failure::BadTime(late) => {
            let server_time = u48(now);
            let algorithm = Algorithm::from_wire(&late.key.algorithm);
            let Some(key) = keyring.get(&late.key.name).filter(|k| Some(k.algorithm) == algorithm)
            else {
                return unsigned(reply, &late.key, &server_time);
            };
            let vars = Variables {
                time_signed: late.time_signed,
                fudge: FUDGE,
                error: error::BADTIME,
                other: &server_time,
            };
            let mut mac = key.context();
            chain(&mut mac, &late.mac);
            mac.update(reply);
            variables(&mut mac, key, &vars);
            let tag = mac.sign();
            let record = Record {
                owner: &key.name,
                algorithm: key.algorithm.wire_name(),
                mac: tag.as_ref(),
                original_id: id,
                vars,
            };
            push_record(reply, &record);
        }
    }
}

/// Set the (low four bits of the) rcode of a message's header.
fn set_rcode(message: &mut [u8], rcode: u8) {
    if let Some(flags) = header::flags(message)
        && let Some(word) = message.get_mut(header::FLAGS..header::FLAGS + 2)
    {
        let flags = flags & !header::RCODE_MASK | u16::from(rcode) & header::RCODE_MASK;
        word.copy_from_slice(&flags.to_be_bytes());
    }
}

/// A TSIG record to append.
struct Record<'a> {
    owner: &'a [u8],
    algorithm: &'a [u8],
    mac: &'a [u8],
    original_id: u16,
    vars: Variables<'a>,
}

/// The length of a TSIG record.
fn record_len(owner: &[u8], algorithm: &[u8], mac_len: usize, other_len: usize) -> usize {
    owner.len() + 10 + algorithm.len() + 6 + 2 + 2 + mac_len + 2 + 2 + 2 + other_len
}

/// Append a TSIG record (uncompressed names) and count it in ARCOUNT.
/// `false` (and the message unchanged) if the message has no header or
/// ARCOUNT is full.
fn push_record(message: &mut Vec<u8>, record: &Record<'_>) -> bool {
    let Some(arcount) = u16_at(message, ARCOUNT).and_then(|n| n.checked_add(1)) else {
        return false;
    };
    if message.len() < header::LEN {
        return false;
    }
    let total =
        record_len(record.owner, record.algorithm, record.mac.len(), record.vars.other.len());
    let rdlength = total - record.owner.len() - 10;
    message.reserve(total);
    message.extend_from_slice(record.owner);
    message.extend_from_slice(&TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdlength as u16).to_be_bytes());
    message.extend_from_slice(record.algorithm);
    message.extend_from_slice(&u48(record.vars.time_signed));
    message.extend_from_slice(&record.vars.fudge.to_be_bytes());
    message.extend_from_slice(&(record.mac.len() as u16).to_be_bytes());
    message.extend_from_slice(record.mac);
    message.extend_from_slice(&record.original_id.to_be_bytes());
    message.extend_from_slice(&record.vars.error.to_be_bytes());
    message.extend_from_slice(&(record.vars.other.len() as u16).to_be_bytes());
    message.extend_from_slice(record.vars.other);
    if let Some(count) = message.get_mut(ARCOUNT..ARCOUNT + 2) {
        count.copy_from_slice(&arcount.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::{
        Name, RData, Record as HRecord, RecordType, TSigResponseContext, TSigner,
    };
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

    /// 2026-12-01, about: any fixed time will do.
    const T: u64 = 1_796_317_108;
    const KEY_NAME: &str = "xfr-key.example.com.";

    fn secret(len: u8) -> Vec<u8> {
        (0..len).collect()
    }

    fn key(algorithm: Algorithm) -> Key {
        Key::new(KEY_NAME, algorithm, &secret(32)).unwrap()
    }

    fn ring(algorithm: Algorithm) -> Keyring {
        Keyring::new([key(algorithm)])
    }

    fn hickory_algorithm(algorithm: Algorithm) -> TsigAlgorithm {
        match algorithm {
            Algorithm::HmacSha256 => TsigAlgorithm::HmacSha256,
            Algorithm::HmacSha384 => TsigAlgorithm::HmacSha384,
            Algorithm::HmacSha512 => TsigAlgorithm::HmacSha512,
            other => panic!("hickory has no {other}"),
        }
    }

    const HICKORY: [Algorithm; 3] =
        [Algorithm::HmacSha256, Algorithm::HmacSha384, Algorithm::HmacSha512];

    fn hickory_signer(algorithm: Algorithm) -> TSigner {
        let name = Name::from_ascii(KEY_NAME).unwrap();
        TSigner::new(secret(32), hickory_algorithm(algorithm), name, 300).unwrap()
    }

    fn zone() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    /// A request as hickory builds it.
    fn request(id: u16, op: OpCode, qtype: RecordType) -> Message {
        let mut m = Message::new(id, MessageType::Query, op);
        m.add_query(Query::query(zone(), qtype));
        m
    }

    /// A response to `request` as hickory builds it, with `answers` A
    /// records, unsigned.
    fn response(id: u16, op: OpCode, qtype: RecordType, answers: u8) -> Vec<u8> {
        let mut m = Message::response(id, op);
        m.add_query(Query::query(zone(), qtype));
        for i in 0..answers {
            let name = Name::from_ascii(format!("host{i}.example.com.")).unwrap();
            m.add_answer(HRecord::from_rdata(name, 60, RData::A(A::new(10, 0, 0, i))));
        }
        m.to_bytes().unwrap()
    }

    /// A plain query for `example.com` of `qtype`, our own bytes.
    fn plain_query(id: u16, opcode: u8, qtype: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&(u16::from(opcode) << 11).to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(b"\x07example\x03com\x00");
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    /// A query signed by our own request signer.
    fn signed_query(algorithm: Algorithm, now: u64) -> Vec<u8> {
        let mut m = plain_query(0x4242, 0, 252);
        Signer::for_request(Arc::new(key(algorithm))).sign(&mut m, now);
        m
    }

    fn arcount(m: &[u8]) -> u16 {
        u16_at(m, ARCOUNT).unwrap()
    }

    /// Append a hickory TSIG record to a message and count it.
    fn append(message: &mut Vec<u8>, record: &HRecord<hickory_proto::rr::rdata::tsig::TSIG>) {
        let mut buf = Vec::new();
        record.emit(&mut BinEncoder::new(&mut buf)).unwrap();
        message.extend_from_slice(&buf);
        let n = arcount(message) + 1;
        message[ARCOUNT..ARCOUNT + 2].copy_from_slice(&n.to_be_bytes());
    }

    // Cross-checks with independent implementations.

    #[test]
    fn hickory_signed_requests_verify() {
        for algorithm in HICKORY {
            for (op, qtype) in [
                (OpCode::Query, RecordType::AXFR),
                (OpCode::Query, RecordType::IXFR),
                (OpCode::Query, RecordType::SOA),
                (OpCode::Notify, RecordType::SOA),
            ] {
                let mut m = request(0x1234, op, qtype);
                m.finalize(&hickory_signer(algorithm), T).unwrap();
                let bytes = m.to_bytes().unwrap();
                let signer = verify_request(&ring(algorithm), &bytes, T).unwrap();
                assert_eq!(signer.key().algorithm(), algorithm);
                assert_eq!(signer.key().name_text(), KEY_NAME);
            }
        }
    }

    #[test]
    fn bind_and_knot_signed_queries_verify() {
        // Captured from `dig -y hmac-sha256:Xfr-Key.Example.COM:<0..32>` and
        // `kdig -y hmac-sha512:Xfr-Key.example.com:<0..64>`, SOA queries.
        let dig = "e69001200001000000000001076578616d706c6503636f6d0000060001077866722d6b6579076578616d706c6503636f6d0000fa00ff00000000003d0b686d61632d7368613235360000006b118fb4012c002022bd367ec9672233a190962d6851da8c882efe48e4e7d99baa6abd18aec17001e69000000000";
        let kdig = "74a801200001000000000001076578616d706c6503636f6d0000060001077866722d6b6579076578616d706c6503636f6d0000fa00ff00000000005d0b686d61632d7368613531320000006b118fba012c0040defa3b292b28a4d569d7f1bb1d7932e4ce53321b7e779d94354258d075bcb18b55406b8a2269faa648b5cd5c50cda7ed37dfb4d488a98e6fe1d33c64a7c2f31274a800000000";
        let cases = [
            (dig, "hmac-sha256", secret(32), 0x6b11_8fb4),
            (kdig, "hmac-sha512", secret(64), 0x6b11_8fba),
        ];
        for (hex, algorithm, secret, time) in cases {
            let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).unwrap();
            let value = format!("{algorithm}:{}", data_encoding::BASE64.encode(&secret));
            let keys = Keyring::new([Key::parse("XFR-key.example.com", &value).unwrap()]);
            assert!(verify_request(&keys, &bytes, time).is_ok(), "{algorithm}");
            assert!(verify_request(&keys, &bytes, time + 300).is_ok());
            assert!(matches!(verify_request(&keys, &bytes, time + 301), Err(Failure::BadTime(_))));
            let mut tampered = bytes.clone();
            tampered[3] ^= 0x01; // the RD bit
            assert!(matches!(verify_request(&keys, &tampered, time), Err(Failure::BadSig(_))));
        }
    }

    #[test]
    fn hickory_verifies_our_single_response() {
        for algorithm in HICKORY {
            let mut m = request(0x2345, OpCode::Query, RecordType::SOA);
            let mut verifier = m.finalize(&hickory_signer(algorithm), T).unwrap().unwrap();
            let mut signer = verify_request(&ring(algorithm), &m.to_bytes().unwrap(), T).unwrap();
            let mut answer = response(0x2345, OpCode::Query, RecordType::SOA, 2);
            let unsigned = answer.len();
            signer.sign(&mut answer, T + 1);
            assert_eq!(answer.len(), unsigned + signer.tsig_len());
            assert_eq!(arcount(&answer), 1);
            verifier.verify(&answer).unwrap();
        }
    }

    #[test]
    fn hickory_verifies_our_multi_message_transfer() {
        for algorithm in HICKORY {
            let mut m = request(0x3456, OpCode::Query, RecordType::AXFR);
            let mut verifier = m.finalize(&hickory_signer(algorithm), T).unwrap().unwrap();
            let mut signer = verify_request(&ring(algorithm), &m.to_bytes().unwrap(), T).unwrap();
            let mut messages: Vec<Vec<u8>> =
                (1..=4).map(|n| response(0x3456, OpCode::Query, RecordType::AXFR, n)).collect();
            for (i, message) in messages.iter_mut().enumerate() {
                signer.sign(message, T + i as u64);
            }
            // A tampered later message fails (the check has teeth)...
            let mut spoiled = hickory_verifier_after(algorithm, &messages[..2]);
            let mut bad = messages[2].clone();
            bad[header::LEN + 1] ^= 0x20;
            assert!(spoiled.verify(&bad).is_err());
            // ...and the real sequence verifies, message by message.
            for message in &messages {
                verifier.verify(message).unwrap();
            }
        }
    }

    /// A hickory verifier for an AXFR request (signed again, the same way)
    /// that has verified `messages` already.
    fn hickory_verifier_after(
        algorithm: Algorithm,
        messages: &[Vec<u8>],
    ) -> hickory_proto::rr::TSigVerifier {
        let mut m = request(0x3456, OpCode::Query, RecordType::AXFR);
        let mut verifier = m.finalize(&hickory_signer(algorithm), T).unwrap().unwrap();
        for message in messages {
            verifier.verify(message).unwrap();
        }
        verifier
    }

    #[test]
    fn later_messages_mac_the_prior_mac_the_message_and_the_timers() {
        // The RFC 8945 §5.3.1 rule, recomputed here from its text.
        let key = key(Algorithm::HmacSha256);
        let request = signed_query(Algorithm::HmacSha256, T);
        let mut signer = verify_request(&Keyring::new([key.clone()]), &request, T).unwrap();
        let mut first = plain_query(0x4242, 0, 252);
        first[2] |= 0x80;
        let mut second = first.clone();
        second.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        second[7] = 1;
        signer.sign(&mut first, T);
        let unsigned = second.clone();
        signer.sign(&mut second, T + 5);

        let first_mac = find(&first).unwrap().unwrap().mac.to_vec();
        let hkey = hmac::Key::new(hmac::HMAC_SHA256, &secret(32));
        let mut input = (first_mac.len() as u16).to_be_bytes().to_vec();
        input.extend_from_slice(&first_mac);
        input.extend_from_slice(&unsigned);
        input.extend_from_slice(&u48(T + 5));
        input.extend_from_slice(&300u16.to_be_bytes());
        let expected = hmac::sign(&hkey, &input);
        assert_eq!(find(&second).unwrap().unwrap().mac, expected.as_ref());
    }

    #[test]
    fn our_notify_is_verified_by_hickory_and_its_answer_by_us() {
        for algorithm in HICKORY {
            let mut notify = plain_query(0x5678, 4, 6);
            notify[2] |= 0x04; // AA
            let mut signer = Signer::for_request(Arc::new(key(algorithm)));
            signer.sign(&mut notify, T);
            let hickory = hickory_signer(algorithm);
            let (mac, _, _) = hickory.verify_message_byte(&notify, None, true).unwrap();

            let mut answer = response(0x5678, OpCode::Notify, RecordType::SOA, 0);
            let context = TSigResponseContext::new(0x5678, T + 2, hickory.clone(), mac, None);
            let record = context.sign(&answer).unwrap();
            append(&mut answer, &record);
            assert_eq!(signer.verify_response(&answer, T + 3), Ok(()));
            assert_eq!(
                signer.verify_response(&answer, T + 2 + 301),
                Err(ResponseError::BadTime { time_signed: T + 2 })
            );
            let mut tampered = answer.clone();
            tampered[3] ^= 0x0F;
            assert_eq!(signer.verify_response(&tampered, T + 3), Err(ResponseError::BadSig));
            let unsigned = response(0x5678, OpCode::Notify, RecordType::SOA, 0);
            assert_eq!(signer.verify_response(&unsigned, T), Err(ResponseError::Unsigned));
            let other = Signer::for_request(Arc::new(key(Algorithm::HmacSha1)));
            assert_eq!(other.verify_response(&answer, T + 3), Err(ResponseError::WrongKey));
        }
    }

    #[test]
    fn hickory_verifies_our_signed_badtime_answer() {
        for algorithm in HICKORY {
            let mut m = request(0x6789, OpCode::Query, RecordType::AXFR);
            let mut verifier = m.finalize(&hickory_signer(algorithm), T).unwrap().unwrap();
            let keys = ring(algorithm);
            let late = T + 3600;
            let failure = verify_request(&keys, &m.to_bytes().unwrap(), late).unwrap_err();
            assert!(matches!(failure, Failure::BadTime(_)), "{failure:?}");
            assert_eq!((failure.rcode(), failure.tsig_error()), (9, error::BADTIME));
            let mut reply = response(0x6789, OpCode::Query, RecordType::AXFR, 0);
            error_response(&mut reply, &failure, &keys, late);
            assert_eq!(header::rcode(&reply), Some(9));
            let tsig = find(&reply).unwrap().unwrap();
            assert_eq!(tsig.error, error::BADTIME);
            assert_eq!(tsig.time_signed, T, "the request's time, as BIND does");
            assert_eq!(tsig.other, u48(late));
            assert_eq!(tsig.mac.len(), algorithm.mac_len());
            verifier.verify(&reply).unwrap();
        }
    }

    // Our own round trips, every algorithm.

    #[test]
    fn round_trip_every_algorithm() {
        for algorithm in Algorithm::ALL {
            let keys = ring(algorithm);
            let mut notify = plain_query(7, 4, 6);
            let mut client = Signer::for_request(Arc::clone(keys.get_text(KEY_NAME).unwrap()));
            client.sign(&mut notify, T);
            let mut server = verify_request(&keys, &notify, T + 10).unwrap();
            let mut answer = plain_query(7, 4, 6);
            answer[2] |= 0x80;
            server.sign(&mut answer, T + 11);
            assert_eq!(client.verify_response(&answer, T + 12), Ok(()), "{algorithm}");
        }
    }

    #[test]
    fn badtime_answer_tells_the_client_our_clock() {
        let keys = ring(Algorithm::HmacSha256);
        let mut client = Signer::for_request(Arc::new(key(Algorithm::HmacSha256)));
        let mut notify = plain_query(9, 4, 6);
        client.sign(&mut notify, T);
        let failure = verify_request(&keys, &notify, T + 1000).unwrap_err();
        let mut reply = plain_query(9, 4, 6);
        reply[2] |= 0x80;
        error_response(&mut reply, &failure, &keys, T + 1000);
        assert_eq!(
            client.verify_response(&reply, T),
            Err(ResponseError::Rejected { error: error::BADTIME, server_time: Some(T + 1000) })
        );
    }

    #[test]
    fn times_within_the_fudge() {
        let keys = ring(Algorithm::HmacSha256);
        let m = signed_query(Algorithm::HmacSha256, T);
        for now in [T - 300, T, T + 300] {
            assert!(verify_request(&keys, &m, now).is_ok());
        }
        for now in [0, T - 301, T + 301, u64::MAX] {
            let Err(Failure::BadTime(late)) = verify_request(&keys, &m, now) else {
                panic!("{now} should be BADTIME");
            };
            assert_eq!(late.time_signed, T);
        }
    }

    // Failures.

    #[test]
    fn tampering_is_badsig() {
        let keys = ring(Algorithm::HmacSha256);
        let m = signed_query(Algorithm::HmacSha256, T);
        let start = find(&m).unwrap().unwrap().start;
        for at in 2..start {
            let mut bad = m.clone();
            bad[at] ^= 0x01;
            assert!(verify_request(&keys, &bad, T).is_err(), "byte {at}");
        }
        // The MAC itself, and the other fields of the record.
        let mut bad = m.clone();
        let last = bad.len() - 7; // the MAC's last byte
        bad[last] ^= 0x01;
        assert!(matches!(verify_request(&keys, &bad, T), Err(Failure::BadSig(_))));
        // Another secret under the same name.
        let other = Keyring::new([Key::new(KEY_NAME, Algorithm::HmacSha256, b"other").unwrap()]);
        let Err(Failure::BadSig(key)) = verify_request(&other, &m, T) else { panic!() };
        assert_eq!(name_text(&key.name), KEY_NAME);
    }

    #[test]
    fn the_header_id_may_change_after_signing() {
        let keys = ring(Algorithm::HmacSha256);
        let mut m = signed_query(Algorithm::HmacSha256, T);
        m[0] ^= 0xFF;
        assert!(verify_request(&keys, &m, T).is_ok(), "the Original ID is what is signed");
    }

    #[test]
    fn names_match_in_any_case() {
        let keys = ring(Algorithm::HmacSha256);
        let mut m = signed_query(Algorithm::HmacSha256, T);
        let start = find(&m).unwrap().unwrap().start;
        m[start + 1] = b'X'; // the key name
        let alg = start + KEY_NAME.len() + 1 + 10 + 1;
        m[alg] = b'H'; // the algorithm name
        assert_eq!(find(&m).unwrap().unwrap().key_name, wire_name(KEY_NAME).unwrap());
        assert!(verify_request(&keys, &m, T).is_ok());
    }

    #[test]
    fn unknown_key_or_algorithm_is_badkey_and_answered_unsigned() {
        let m = signed_query(Algorithm::HmacSha256, T);
        let other_name = Keyring::new([Key::new("other", Algorithm::HmacSha256, b"s").unwrap()]);
        let other_algorithm = ring(Algorithm::HmacSha512);
        for keys in [&other_name, &other_algorithm, &Keyring::default()] {
            let failure = verify_request(keys, &m, T).unwrap_err();
            let Failure::BadKey(key) = &failure else { panic!("{failure:?}") };
            assert_eq!(name_text(&key.name), KEY_NAME);
            assert_eq!(key.algorithm, Algorithm::HmacSha256.wire_name());
            assert_eq!(failure.to_string(), format!("unknown TSIG key {KEY_NAME} (hmac-sha256)"));

            let mut reply = plain_query(0x4242, 0, 252);
            reply[2] |= 0x80;
            error_response(&mut reply, &failure, keys, T + 7);
            assert_eq!(header::rcode(&reply), Some(9));
            assert_eq!(arcount(&reply), 1);
            let tsig = find(&reply).unwrap().unwrap();
            assert_eq!(tsig.error, error::BADKEY);
            assert_eq!((tsig.mac, tsig.other, tsig.original_id), (&[][..], &[][..], 0x4242));
            assert_eq!(tsig.algorithm, Algorithm::HmacSha256.wire_name());
            assert_eq!(tsig.time_signed, T + 7);
        }
    }

    #[test]
    fn badsig_is_answered_unsigned() {
        let m = signed_query(Algorithm::HmacSha256, T);
        let keys = Keyring::new([Key::new(KEY_NAME, Algorithm::HmacSha256, b"x").unwrap()]);
        let failure = verify_request(&keys, &m, T).unwrap_err();
        let mut reply = plain_query(0x4242, 0, 252);
        error_response(&mut reply, &failure, &keys, T);
        let tsig = find(&reply).unwrap().unwrap();
        assert_eq!((tsig.error, tsig.mac), (error::BADSIG, &[][..]));
        assert_eq!(header::rcode(&reply), Some(9));
        // The client sees the server's verdict.
        let client = Signer::for_request(Arc::new(key(Algorithm::HmacSha256)));
        assert_eq!(
            client.verify_response(&reply, T),
            Err(ResponseError::Rejected { error: error::BADSIG, server_time: None })
        );
    }

    #[test]
    fn formerr_and_unsigned_answers_have_no_tsig() {
        let keys = ring(Algorithm::HmacSha256);
        for (failure, rcode) in [(Failure::FormErr, 1), (Failure::Unsigned, 5)] {
            let mut reply = plain_query(1, 0, 252);
            reply[3] = 0x09;
            error_response(&mut reply, &failure, &keys, T);
            assert_eq!(header::rcode(&reply), Some(rcode));
            assert_eq!(reply, {
                let mut r = plain_query(1, 0, 252);
                r[3] = rcode;
                r
            });
        }
        assert_eq!(
            verify_request(&keys, &plain_query(1, 0, 252), T).unwrap_err(),
            Failure::Unsigned
        );
    }

    /// `m` (signed) rebuilt with its TSIG record's MAC replaced.
    fn with_mac(m: &[u8], mac: &[u8]) -> Vec<u8> {
        let tsig = find(m).unwrap().unwrap();
        let mut out = m[..tsig.start].to_vec();
        let n = arcount(&out) - 1;
        out[ARCOUNT..ARCOUNT + 2].copy_from_slice(&n.to_be_bytes());
        let record = Record {
            owner: &tsig.key_name,
            algorithm: tsig.algorithm,
            mac,
            original_id: tsig.original_id,
            vars: Variables {
                time_signed: tsig.time_signed,
                fudge: tsig.fudge,
                error: tsig.error,
                other: tsig.other,
            },
        };
        assert!(push_record(&mut out, &record));
        out
    }

    #[test]
    fn truncated_macs() {
        for algorithm in Algorithm::ALL {
            let keys = ring(algorithm);
            let m = signed_query(algorithm, T);
            let mac = find(&m).unwrap().unwrap().mac.to_vec();
            assert_eq!(with_mac(&m, &mac), m);
            let shortest = algorithm.min_mac_len();
            assert!(
                verify_request(&keys, &with_mac(&m, &mac[..shortest]), T).is_ok(),
                "{algorithm}"
            );
            assert_eq!(
                verify_request(&keys, &with_mac(&m, &mac[..shortest - 1]), T).unwrap_err(),
                Failure::FormErr
            );
            assert_eq!(verify_request(&keys, &with_mac(&m, &[]), T).unwrap_err(), Failure::FormErr);
            let mut long = mac.clone();
            long.push(0);
            assert_eq!(
                verify_request(&keys, &with_mac(&m, &long), T).unwrap_err(),
                Failure::FormErr
            );
            let mut wrong = mac[..shortest].to_vec();
            wrong[0] ^= 1;
            assert!(matches!(
                verify_request(&keys, &with_mac(&m, &wrong), T),
                Err(Failure::BadSig(_))
            ));
        }
        assert_eq!(Algorithm::HmacSha1.min_mac_len(), 10);
        assert_eq!(Algorithm::HmacSha256.min_mac_len(), 16);
        assert_eq!(Algorithm::HmacSha512.min_mac_len(), 32);
    }

    #[test]
    fn a_response_to_a_truncated_request_chains_to_the_truncated_mac() {
        let key = key(Algorithm::HmacSha256);
        let m = signed_query(Algorithm::HmacSha256, T);
        let mac = find(&m).unwrap().unwrap().mac.to_vec();
        let truncated = with_mac(&m, &mac[..16]);
        let mut signer = verify_request(&Keyring::new([key.clone()]), &truncated, T).unwrap();
        let mut answer = plain_query(0x4242, 0, 252);
        answer[2] |= 0x80;
        let unsigned = answer.clone();
        signer.sign(&mut answer, T);
        let mut expected = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, &secret(32)));
        chain(&mut expected, &mac[..16]);
        expected.update(&unsigned);
        variables(
            &mut expected,
            &key,
            &Variables { time_signed: T, fudge: 300, error: 0, other: &[] },
        );
        assert_eq!(find(&answer).unwrap().unwrap().mac, expected.sign().as_ref());
    }

    // Where the record is, and its form.

    #[test]
    fn a_tsig_that_is_not_last_is_formerr() {
        let keys = ring(Algorithm::HmacSha256);
        let m = signed_query(Algorithm::HmacSha256, T);
        // A record after it.
        let mut after = m.clone();
        after.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        after[11] += 1;
        assert_eq!(find(&after).unwrap_err(), Failure::FormErr);
        assert_eq!(verify_request(&keys, &after, T).unwrap_err(), Failure::FormErr);
        // Two of them.
        let mut twice = m.clone();
        Signer::for_request(Arc::new(key(Algorithm::HmacSha256))).sign(&mut twice, T);
        assert_eq!(arcount(&twice), 2);
        assert_eq!(verify_request(&keys, &twice, T).unwrap_err(), Failure::FormErr);
        // In the answer section, the additional empty.
        let mut answer = m.clone();
        answer[7] = 1;
        answer[11] = 0;
        assert_eq!(find(&answer).unwrap_err(), Failure::FormErr);
        // Bytes after it.
        let mut trailing = m.clone();
        trailing.push(0);
        assert_eq!(find(&trailing).unwrap_err(), Failure::FormErr);
        // None at all.
        assert_eq!(find(&plain_query(1, 0, 1)), Ok(None));
    }

    #[test]
    fn a_compressed_key_name_is_read_a_compressed_algorithm_is_formerr() {
        let keys = ring(Algorithm::HmacSha256);
        let m = signed_query(Algorithm::HmacSha256, T);
        let start = find(&m).unwrap().unwrap().start;
        let owner = wire_name(KEY_NAME).unwrap();
        assert_eq!(&m[start..start + owner.len()], owner.as_slice());
        // "xfr-key" and a pointer to "example.com" in the question.
        let mut compressed = m[..start].to_vec();
        compressed.extend_from_slice(b"\x07xfr-key\xc0\x0c");
        compressed.extend_from_slice(&m[start + owner.len()..]);
        assert_eq!(find(&compressed).unwrap().unwrap().key_name, owner);
        assert!(verify_request(&keys, &compressed, T).is_ok());
        // A pointer forwards, or to itself, is not followed.
        let mut forward = compressed.clone();
        let at = start + 8;
        forward[at + 1] = (start + 8) as u8;
        assert_eq!(find(&forward).unwrap_err(), Failure::FormErr);

        // The algorithm name as a pointer to the question's name.
        let fixed = start + owner.len();
        let rdata = fixed + 10;
        let algorithm = Algorithm::HmacSha256.wire_name().len();
        let mut pointer = m[..rdata].to_vec();
        pointer.extend_from_slice(b"\xc0\x0c");
        pointer.extend_from_slice(&m[rdata + algorithm..]);
        let rdlength = u16_at(&m, fixed + 8).unwrap() - algorithm as u16 + 2;
        pointer[fixed + 8..fixed + 10].copy_from_slice(&rdlength.to_be_bytes());
        assert_eq!(find(&pointer).unwrap_err(), Failure::FormErr);
    }

    #[test]
    fn class_and_ttl_must_be_any_and_zero() {
        let m = signed_query(Algorithm::HmacSha256, T);
        let fixed = find(&m).unwrap().unwrap().start + wire_name(KEY_NAME).unwrap().len();
        for at in [fixed + 3, fixed + 7] {
            let mut bad = m.clone();
            bad[at] ^= 1;
            assert_eq!(find(&bad).unwrap_err(), Failure::FormErr);
        }
    }

    #[test]
    fn no_input_panics() {
        let keys = ring(Algorithm::HmacSha256);
        let client = Signer::for_request(Arc::new(key(Algorithm::HmacSha256)));
        let check = |m: &[u8]| {
            let _ = find(m);
            let _ = verify_request(&keys, m, T);
            let _ = client.verify_response(m, T);
        };
        // Every prefix of signed messages: never verified.
        let mut hickory = request(1, OpCode::Query, RecordType::AXFR);
        hickory.finalize(&hickory_signer(Algorithm::HmacSha256), T).unwrap();
        let mut answer = plain_query(0x4242, 0, 252);
        verify_request(&keys, &signed_query(Algorithm::HmacSha256, T), T)
            .unwrap()
            .sign(&mut answer, T);
        for m in [signed_query(Algorithm::HmacSha256, T), hickory.to_bytes().unwrap(), answer] {
            for n in 0..m.len() {
                check(&m[..n]);
                assert!(verify_request(&keys, &m[..n], T).is_err());
            }
        }
        // Random changes to a signed message: never verified, unless the
        // change is to the header's ID or the case of a name.
        let m = signed_query(Algorithm::HmacSha256, T);
        // Reproducible: the same bytes every run.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9E37_79B9);
        for _ in 0..20_000 {
            let mut bad = m.clone();
            let at = rng.random_range(2..m.len());
            let flip = rng.random::<u8>() | 1;
            bad[at] ^= flip;
            check(&bad);
            if !bad[at].eq_ignore_ascii_case(&m[at]) {
                assert!(verify_request(&keys, &bad, T).is_err(), "byte {at} ^ {flip:#x}");
            }
        }
        // Random bytes, some with a plausible header.
        for _ in 0..20_000 {
            let len = rng.random_range(0..160);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
            if len >= 12 && rng.random::<bool>() {
                bytes[4..12].copy_from_slice(&[0, rng.random_range(0..2u8), 0, 0, 0, 0, 0, 1]);
            }
            check(&bytes);
        }
        // Signing whatever: never panics either.
        for len in 0..14 {
            let mut bytes = vec![0xFF; len];
            Signer::for_request(Arc::new(key(Algorithm::HmacSha256))).sign(&mut bytes, T);
            error_response(
                &mut bytes,
                &Failure::BadSig(RequestKey { name: vec![0], algorithm: vec![0] }),
                &keys,
                T,
            );
        }
    }

    #[test]
    fn a_full_arcount_is_left_unsigned() {
        let mut m = plain_query(1, 0, 252);
        m[10] = 0xFF;
        m[11] = 0xFF;
        let before = m.clone();
        Signer::for_request(Arc::new(key(Algorithm::HmacSha256))).sign(&mut m, T);
        assert_eq!(m, before);
    }

    // Against BIND's dig and Knot's kdig, live (they verify every message
    // of a transfer, RFC 8945 §5.3.1).

    /// The answer to `request` (header and question echoed): message
    /// `n` of `of` of a transfer of `example.com`.
    fn transfer_message(request: &[u8], n: usize, of: usize) -> Vec<u8> {
        let question_end = skip_name(request, header::LEN).unwrap() + 4;
        let mut m = request[..question_end].to_vec();
        m[2] = 0x84; // QR, AA
        m[3] = 0;
        m[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
        if n == 0 || n + 1 == of {
            let mut soa = b"\x02ns\xc0\x0c\x01h\xc0\x0c".to_vec();
            for v in [1u32, 3600, 600, 86400, 60] {
                soa.extend_from_slice(&v.to_be_bytes());
            }
            m.extend_from_slice(&[0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0, 60, 0, soa.len() as u8]);
            m.extend_from_slice(&soa);
        } else {
            m.extend_from_slice(b"\x04host\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04");
            m.extend_from_slice(&[10, 0, 0, n as u8]);
        }
        m
    }

    /// Answer one request on `tcp` or UDP, signed (a transfer of `of`
    /// messages over TCP); the request must verify.
    fn serve_one(keys: Keyring, of: usize) -> (u16, std::thread::JoinHandle<()>) {
        use std::io::{Read, Write};
        use std::time::Duration;
        if of == 1 {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let port = socket.local_addr().unwrap().port();
            let serve = std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let (n, peer) = socket.recv_from(&mut buf).unwrap();
                let mut signer = verify_request(&keys, &buf[..n], now()).unwrap();
                let mut answer = transfer_message(&buf[..n], 0, 1);
                signer.sign(&mut answer, now());
                socket.send_to(&answer, peer).unwrap();
            });
            return (port, serve);
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let serve = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).unwrap();
            let mut request = vec![0; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut request).unwrap();
            let mut signer = verify_request(&keys, &request, now()).unwrap();
            for n in 0..of {
                let mut m = transfer_message(&request, n, of);
                signer.sign(&mut m, now());
                stream.write_all(&(m.len() as u16).to_be_bytes()).unwrap();
                stream.write_all(&m).unwrap();
            }
            let _ = stream.read(&mut len);
        });
        (port, serve)
    }

    #[test]
    #[ignore = "runs dig and kdig: cargo test --lib tsig -- --ignored"]
    fn dig_and_kdig_accept_our_signatures() {
        for algorithm in [Algorithm::HmacSha256, Algorithm::HmacSha512, Algorithm::HmacSha1] {
            let value =
                format!("{}:{}", algorithm.name(), data_encoding::BASE64.encode(&secret(32)));
            let spec = format!(
                "{}:{KEY_NAME}:{}",
                algorithm.name(),
                data_encoding::BASE64.encode(&secret(32))
            );
            for tool in ["dig", "kdig"] {
                for (qtype, of) in [("SOA", 1), ("AXFR", 4)] {
                    let keys = Keyring::new([Key::parse(KEY_NAME, &value).unwrap()]);
                    let (port, serve) = serve_one(keys, of);
                    let retry = if tool == "dig" { "+tries=1" } else { "+retry=0" };
                    let out = std::process::Command::new(tool)
                        .args([retry, "-y", &spec, "-p", &port.to_string(), "@127.0.0.1"])
                        .args(["example.com", qtype])
                        .output()
                        .unwrap();
                    serve.join().unwrap();
                    let text = String::from_utf8_lossy(&out.stdout).to_lowercase()
                        + &String::from_utf8_lossy(&out.stderr).to_lowercase();
                    let what = format!("{tool} {qtype} {algorithm}:\n{text}");
                    assert!(out.status.success(), "{what}");
                    for bad in
                        ["couldn't verify", "failed", "warning", "badsig", "badkey", "badtime"]
                    {
                        assert!(!text.contains(bad), "{what}");
                    }
                    assert!(text.contains("host") == (of > 1), "{what}");
                }
            }
        }
    }

    // Keys.

    #[test]
    fn keys_parse_from_the_config() {
        let b64 = data_encoding::BASE64.encode(&secret(32));
        let k = Key::parse("Xfr-Key.Example.com", &b64).unwrap();
        assert_eq!(k.algorithm(), Algorithm::HmacSha256);
        assert_eq!(k.name_text(), KEY_NAME);
        assert_eq!(k.name(), wire_name(KEY_NAME).unwrap());
        assert_eq!(k, key(Algorithm::HmacSha256));
        for (text, algorithm) in [
            ("hmac-sha512", Algorithm::HmacSha512),
            ("HMAC-SHA384", Algorithm::HmacSha384),
            ("hmac-sha1", Algorithm::HmacSha1),
            ("hmac-sha224.", Algorithm::HmacSha224),
            (" hmac-sha256 ", Algorithm::HmacSha256),
        ] {
            let k = Key::parse("k", &format!("{text}:{b64}")).unwrap();
            assert_eq!(k.algorithm(), algorithm);
        }
        assert_ne!(Key::parse("k", &b64).unwrap(), Key::parse("k", "AAAA").unwrap());
    }

    #[test]
    fn key_errors_never_show_the_secret() {
        let cases = [
            ("hmac-md5:c2VjcmV0c2VjcmV0", "c2VjcmV0c2VjcmV0"),
            ("hmac-sha256:c2VjcmV0*2VjcmV0", "c2VjcmV0"),
            ("c2VjcmV0c2VjcmV0=", "c2VjcmV0"),
            ("sekrit", "sekrit"),
            ("hmac-sha256:", "hmac-sha256:x"),
            ("", "x"),
        ];
        for (value, secret) in cases {
            let e = Key::parse("k", value).unwrap_err();
            assert!(!e.contains(secret), "{e}");
            assert!(e.contains("\"k\""), "{e}");
        }
        let md5 = Key::parse("k", "hmac-md5:c2VjcmV0").unwrap_err();
        assert!(md5.contains("unknown algorithm"), "{md5}");
        assert!(Key::parse("a..b", "c2VjcmV0").is_err());
        assert!(Key::parse(".", "c2VjcmV0").is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let b64 = "c2VjcmV0c2VjcmV0c2VjcmV0";
        let k = Key::parse("k", b64).unwrap();
        let (ring, signer) = (Keyring::new([k.clone()]), Signer::for_request(Arc::new(k.clone())));
        let shown = format!("{k:?} {ring:?} {signer:?}");
        assert!(!shown.contains(b64) && !shown.contains("secret"), "{shown}");
        assert!(!shown.contains("115, 101, 99"), "{shown}"); // "sec" as bytes
        assert!(shown.contains("Key { name: \"k.\", algorithm: \"hmac-sha256\", .. }"), "{shown}");
    }

    #[test]
    fn keyring_lookups_ignore_case() {
        let keys = Keyring::new([
            key(Algorithm::HmacSha256),
            Key::new("b", Algorithm::HmacSha1, b"s").unwrap(),
        ]);
        assert_eq!(keys.len(), 2);
        assert!(!keys.is_empty());
        assert!(keys.get(b"\x07XFR-KEY\x07example\x03COM\x00").is_some());
        assert!(keys.get_text("Xfr-key.example.com").is_some());
        assert!(keys.get_text("B.").is_some());
        assert!(keys.get_text("c").is_none());
        assert!(keys.get(b"\x01b").is_none());
    }

    #[test]
    fn algorithm_names() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_wire(a.wire_name()), Some(a));
            assert_eq!(Algorithm::from_text(a.name()), Some(a));
            assert_eq!(wire_name(a.name()).unwrap(), a.wire_name());
            assert_eq!(a.to_string(), a.name());
        }
        assert_eq!(Algorithm::from_wire(b"\x0bHMAC-SHA256\x00"), Some(Algorithm::HmacSha256));
        assert_eq!(Algorithm::from_wire(b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00"), None);
        assert_eq!(Algorithm::from_text("hmac-sha256-128"), None);
        assert_eq!(Algorithm::HmacSha384.mac_len(), 48);
    }
}
