//! The configuration file (README, Configuration): the original Mesos-DNS
//! `config.json`, with its key names and defaults ([`Config`]), loading it,
//! its errors ([`ConfigError`]) and its `/v1/config` view
//! ([`Config::redacted`]).
//!
//! Loading reads the text (`read`: case-insensitive keys, JSON types), then
//! validates it with the original's rules and order (`validate`), which
//! also parses every address setting once into [`Config::parsed`]: the
//! server uses those values and never parses the text again. The `zk` URL
//! is in `zk`, the fallback resolvers from `/etc/resolv.conf` in `resolv`,
//! the key names used in errors in `key`.
//!
//! Everything that is wrong with a configuration is reported as one
//! [`ConfigError`] line naming the key and the offending value. Secrets (the
//! Mesos credentials' secret, a password in the `zk` URL) never appear in an
//! error, in `Debug` output, nor in [`Config::redacted`].

mod key;
mod read;
mod resolv;
mod validate;
mod zk;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::addr::redact_url_password;
use crate::proto::tsig;

pub use resolv::{RESOLV_CONF, nameservers_from_resolv_conf};
pub use validate::{is_valid_domain, parse_master, parse_net, parse_resolver};
pub use zk::{DEFAULT_ZK_PORT, ZkUrl, ZkUrlError};

/// Where a task's IP addresses may come from, in `IPSources` priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpSource {
    /// The agent's address.
    Host,
    /// The Mesos containerizer's `NetworkSettings.IPAddress` label.
    Mesos,
    /// The Docker containerizer's `NetworkSettings.IPAddress` label.
    Docker,
    /// The task status' `network_infos` addresses.
    Netinfo,
}

impl IpSource {
    /// The configuration spelling: `host`, `mesos`, `docker` or `netinfo`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpSource::Host => "host",
            IpSource::Mesos => "mesos",
            IpSource::Docker => "docker",
            IpSource::Netinfo => "netinfo",
        }
    }
}

impl fmt::Display for IpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IpSource {
    type Err = String;

    /// Exact (case-sensitive) match, as the original.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(IpSource::Host),
            "mesos" => Ok(IpSource::Mesos),
            "docker" => Ok(IpSource::Docker),
            "netinfo" => Ok(IpSource::Netinfo),
            _ => Err("must be one of \"host\", \"mesos\", \"docker\", \"netinfo\"".to_owned()),
        }
    }
}

/// Where the records' state comes from (`stateSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateSource {
    /// `"auto"`: follow the leading master's event stream (the operator
    /// API's `SUBSCRIBE`), polling `/master/state` while a master cannot
    /// stream.
    #[default]
    Auto,
    /// `"poll"`: poll `/master/state` every `refreshSeconds`, as the
    /// original.
    Poll,
}

impl StateSource {
    /// The configuration spelling: `"auto"` or `"poll"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateSource::Auto => "auto",
            StateSource::Poll => "poll",
        }
    }
}

impl FromStr for StateSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(StateSource::Auto),
            "poll" => Ok(StateSource::Poll),
            _ => Err("must be \"auto\" or \"poll\"".to_owned()),
        }
    }
}

/// How to authenticate to the Mesos masters (`mesosAuthentication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum MesosAuth {
    /// `""`: no authentication.
    #[default]
    #[serde(rename = "")]
    None,
    /// `"basic"`: HTTP basic authentication with `mesosCredentials`.
    #[serde(rename = "basic")]
    Basic,
    /// `"iam"`: DC/OS IAM with the service account in `IAMConfigFile`.
    #[serde(rename = "iam")]
    Iam,
}

impl MesosAuth {
    /// The configuration spelling: `""`, `"basic"` or `"iam"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MesosAuth::None => "",
            MesosAuth::Basic => "basic",
            MesosAuth::Iam => "iam",
        }
    }
}

impl FromStr for MesosAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Ok(MesosAuth::None),
            "basic" => Ok(MesosAuth::Basic),
            "iam" => Ok(MesosAuth::Iam),
            _ => Err("must be \"\", \"basic\" or \"iam\"".to_owned()),
        }
    }
}

/// The placeholder that replaces every secret in output.
pub const REDACTED: &str = "***";

/// HTTP basic credentials for the Mesos masters (`mesosCredentials`).
///
/// `Debug` and `Serialize` never show the secret: it is replaced by `"***"`
/// (or left as `""` when empty, so an unset secret stays visible).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The principal (user name).
    pub principal: String,
    /// The secret (password).
    pub secret: String,
}

impl Credentials {
    fn shown_secret(&self) -> &'static str {
        if self.secret.is_empty() { "" } else { REDACTED }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("principal", &self.principal)
            .field("secret", &self.shown_secret())
            .finish()
    }
}

impl Serialize for Credentials {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Credentials", 2)?;
        s.serialize_field("Principal", &self.principal)?;
        s.serialize_field("Secret", self.shown_secret())?;
        s.end()
    }
}

/// The whole configuration, with the original's defaults.
///
/// `Serialize` produces the original's JSON (its Go field names, as served by
/// `/v1/config`) with every secret redacted; see [`Config::redacted`]. `Debug`
/// prints that same redacted JSON.
#[derive(Clone, PartialEq, Serialize)]
pub struct Config {
    /// `masters`: the Mesos masters, `host:port`, tried in order.
    #[serde(rename = "Masters")]
    pub masters: Vec<String>,
    /// `zk`: the ZooKeeper URL to find the leading master in (empty: none).
    #[serde(rename = "Zk", serialize_with = "serialize_zk")]
    pub zk: String,
    /// `zkDetectionTimeout`: seconds to find a leader in ZooKeeper at start-up (0: no limit).
    #[serde(rename = "ZkDetectionTimeout")]
    pub zk_detection_timeout: u64,
    /// `refreshSeconds`: how often the state is fetched.
    #[serde(rename = "RefreshSeconds")]
    pub refresh_seconds: u64,
    /// `stateTimeoutSeconds`: the timeout of one state request.
    #[serde(rename = "StateTimeoutSeconds")]
    pub state_timeout_seconds: u64,
    /// `ttl`: the TTL of every record.
    #[serde(rename = "TTL")]
    pub ttl: u32,
    /// `domain`: the domain served.
    #[serde(rename = "Domain")]
    pub domain: String,
    /// `port`: the DNS port, UDP and TCP.
    #[serde(rename = "Port")]
    pub port: u16,
    /// `resolvers`: upstream resolvers for names outside the domain (IP or IP:port).
    #[serde(rename = "Resolvers")]
    pub resolvers: Vec<String>,
    /// `zoneResolvers`: upstream resolvers per zone.
    #[serde(rename = "ZoneResolvers")]
    pub zone_resolvers: BTreeMap<String, Vec<String>>,
    /// `timeout`: seconds an upstream may take to answer.
    #[serde(rename = "Timeout")]
    pub timeout: u64,
    /// Must be an IP literal (a check the original does not make: a host name
    /// here could not give the SOA name server its address).
    #[serde(rename = "Listener")]
    pub listener: String,
    /// Must be an IP literal (a check the original does not make).
    #[serde(rename = "HTTPListener")]
    pub http_listener: String,
    /// `httpport`: the HTTP API's port.
    #[serde(rename = "HttpPort")]
    pub http_port: u16,
    /// `dnson`: serve DNS.
    #[serde(rename = "DnsOn")]
    pub dns_on: bool,
    /// `httpon`: serve the HTTP API.
    #[serde(rename = "HttpOn")]
    pub http_on: bool,
    /// `externalon`: forward names outside the domain.
    #[serde(rename = "ExternalOn")]
    pub external_on: bool,
    /// `recurseon`: the RA flag in answers.
    #[serde(rename = "RecurseOn")]
    pub recurse_on: bool,
    /// `enumerationon`: serve `/v1/enumerate` and `/v1/axfr`.
    #[serde(rename = "EnumerationOn")]
    pub enumeration_on: bool,
    /// Ours: `/health` reports 503 once the records in service are older
    /// than this many `refreshSeconds` (default 3).
    #[serde(rename = "HealthStaleRefreshes")]
    pub health_stale_refreshes: u64,
    /// Ours: clients (CIDRs or IPs) whose queries outside the domain are
    /// forwarded; others get REFUSED. Empty (the default): everyone, as the
    /// original.
    #[serde(rename = "AllowForwardFrom")]
    pub allow_forward_from: Vec<String>,
    /// Ours: a state document larger than this (MiB) is abandoned with an
    /// error (default 256).
    #[serde(rename = "StateMaxMegabytes")]
    pub state_max_megabytes: u64,
    /// Ours: follow the masters' event stream (`"auto"`, the default) or
    /// poll `/master/state` (`"poll"`).
    #[serde(rename = "StateSource")]
    pub state_source: StateSource,
    /// Ours: the most HTTP connections served at once, held blocking
    /// queries included (default 16,384); more wait in the backlog.
    #[serde(rename = "HttpMaxConnections")]
    pub http_max_connections: u64,
    /// Ours: who may transfer the zone (AXFR/IXFR): CIDRs or IPs, each
    /// optionally followed by the name of the TSIG key it must sign with
    /// (`"10.0.0.0/8 transfer."`). Empty (the default): nobody.
    #[serde(rename = "AllowTransferFrom")]
    pub allow_transfer_from: Vec<String>,
    /// Ours: the secondaries told of each new version (NOTIFY): `IP` or
    /// `IP:port`, each optionally followed by a TSIG key name.
    #[serde(rename = "Notify")]
    pub notify: Vec<String>,
    /// Ours: TSIG keys by name: the base64 secret, for hmac-sha256, or
    /// `"hmac-sha512:"` (or another algorithm) before it. Shown redacted.
    #[serde(rename = "TsigKeys", serialize_with = "serialize_secrets")]
    pub tsig_keys: BTreeMap<String, String>,
    /// Ours: the TSIG key every transfer and NOTIFY must be signed with,
    /// unless its `allowTransferFrom`/`notify` entry names another (empty:
    /// none).
    #[serde(rename = "TransferKey")]
    pub transfer_key: String,
    /// Ours: at most this many A/AAAA and SRV records per answer, a random
    /// choice of them (default 0: all).
    #[serde(rename = "AnswerLimit")]
    pub answer_limit: u16,
    /// Ours: leave out tasks whose Mesos health checks do not pass, or
    /// have no result yet (default false: every running task, as the
    /// original).
    #[serde(rename = "HealthyOnly")]
    pub healthy_only: bool,
    /// Ours: answer reverse lookups (PTR) for the addresses of tasks,
    /// masters and this server (default false: forwarded, as the
    /// original).
    #[serde(rename = "PtrOn")]
    pub ptr_on: bool,
    /// Ours: at most this many UDP answers a second to each client network
    /// (its /24, or /56 for IPv6); beyond it, answers are dropped, or one
    /// in two (at random) sent truncated (default 0: no limit).
    #[serde(rename = "RateLimit")]
    pub rate_limit: u32,
    /// `SetTruncateBit`: set TC on truncated answers.
    #[serde(rename = "SetTruncateBit")]
    pub set_truncate_bit: bool,
    /// `enforceRFC952`: stricter labels (24 characters, no leading digit).
    #[serde(rename = "EnforceRFC952")]
    pub enforce_rfc952: bool,
    /// `IPSources`: where task IPs come from, in priority order.
    #[serde(rename = "IPSources")]
    pub ip_sources: Vec<IpSource>,
    /// `SRVRecordDefaultWeight`: the weight of SRV records.
    #[serde(rename = "SRVRecordDefaultWeight")]
    pub srv_record_default_weight: u16,
    /// `SOAMname`: the SOA's primary name server (and the NS record's target).
    #[serde(rename = "SOAMname")]
    pub soa_mname: String,
    /// `SOARname`: the SOA's mailbox, as a name.
    #[serde(rename = "SOARname")]
    pub soa_rname: String,
    /// `SOARefresh`: the SOA refresh timer.
    #[serde(rename = "SOARefresh")]
    pub soa_refresh: u32,
    /// `SOARetry`: the SOA retry timer.
    #[serde(rename = "SOARetry")]
    pub soa_retry: u32,
    /// `SOAExpire`: the SOA expire timer.
    #[serde(rename = "SOAExpire")]
    pub soa_expire: u32,
    /// `SOAMinttl`: the SOA minimum TTL (and the TTL of negative answers, at most `ttl`).
    #[serde(rename = "SOAMinttl")]
    pub soa_minttl: u32,
    /// `mesosHTTPSOn`: ask the masters over HTTPS.
    #[serde(rename = "MesosHTTPSOn")]
    pub mesos_https_on: bool,
    /// `caCertFile`: the CA bundle to verify the masters with (empty: the system's).
    #[serde(rename = "CACertFile")]
    pub ca_cert_file: String,
    /// `certFile`: the client certificate for the masters.
    #[serde(rename = "CertFile")]
    pub cert_file: String,
    /// `keyFile`: the client certificate's private key.
    #[serde(rename = "KeyFile")]
    pub key_file: String,
    /// `mesosAuthentication`: how to authenticate to the masters.
    #[serde(rename = "MesosAuthentication")]
    pub mesos_authentication: MesosAuth,
    /// `mesosCredentials`: the principal and secret of basic authentication.
    #[serde(rename = "MesosCredentials")]
    pub mesos_credentials: Credentials,
    /// `IAMConfigFile`: the DC/OS service account file of IAM authentication.
    #[serde(rename = "IAMConfigFile")]
    pub iam_config_file: String,
    /// The absolute path of the file read (empty when not read from a file).
    #[serde(rename = "File", serialize_with = "serialize_path")]
    pub file: PathBuf,
    /// The address settings above, parsed by validation.
    #[serde(skip)]
    pub parsed: Parsed,
}

/// The settings that are addresses, parsed once when the configuration is
/// validated ([`Config::validate`]), for the server to use as they are. The
/// text fields of [`Config`] keep what the file says, for `/v1/config`.
/// The defaults are those of the default text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// `listener`: where DNS is served.
    pub listener: IpAddr,
    /// `httpListener`: where HTTP is served.
    pub http_listener: IpAddr,
    /// `zk`; `None` when empty (the `masters` are used).
    pub zk: Option<ZkUrl>,
    /// `resolvers`, port 53 when not given, IPv4-mapped addresses as IPv4.
    /// Empty when `externalon` is false (nothing is forwarded).
    pub resolvers: Vec<SocketAddr>,
    /// `zoneResolvers` as `resolvers`, by lower-case zone. Empty when
    /// `externalon` is false.
    pub zone_resolvers: BTreeMap<String, Vec<SocketAddr>>,
    /// `allowForwardFrom`: a single address is a network of one.
    pub allow_forward_from: Vec<ipnet::IpNet>,
    /// `allowTransferFrom`, with the key each entry requires
    /// (`transferKey` unless it names one).
    pub allow_transfer_from: Vec<TransferPeer>,
    /// `notify`, port 53 when not given, with the key each is signed with.
    pub notify: Vec<NotifyTarget>,
    /// `tsigKeys`, decoded.
    pub tsig_keys: Vec<tsig::Key>,
}

/// An `allowTransferFrom` entry: who, and the TSIG key (its lower-case
/// name, fully qualified) a transfer must be signed with, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferPeer {
    /// The clients it admits.
    pub net: ipnet::IpNet,
    /// The key their requests must be signed with.
    pub key: Option<String>,
}

/// A `notify` entry: where, and the TSIG key (lower-case name, fully
/// qualified) to sign with, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// The secondary's address.
    pub addr: SocketAddr,
    /// The key to sign NOTIFY with.
    pub key: Option<String>,
}

impl Default for Parsed {
    fn default() -> Self {
        Parsed {
            listener: IpAddr::from([0, 0, 0, 0]),
            http_listener: IpAddr::from([0, 0, 0, 0]),
            zk: None,
            resolvers: vec![SocketAddr::from(([8, 8, 8, 8], 53))],
            zone_resolvers: BTreeMap::new(),
            allow_forward_from: Vec::new(),
            allow_transfer_from: Vec::new(),
            notify: Vec::new(),
            tsig_keys: Vec::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            masters: Vec::new(),
            zk: String::new(),
            zk_detection_timeout: 30,
            refresh_seconds: 60,
            state_timeout_seconds: 300,
            ttl: 60,
            domain: "mesos".to_owned(),
            port: 53,
            resolvers: vec!["8.8.8.8".to_owned()],
            zone_resolvers: BTreeMap::new(),
            timeout: 5,
            listener: "0.0.0.0".to_owned(),
            http_listener: "0.0.0.0".to_owned(),
            http_port: 8123,
            dns_on: true,
            http_on: true,
            external_on: true,
            recurse_on: true,
            enumeration_on: true,
            health_stale_refreshes: 3,
            allow_forward_from: Vec::new(),
            state_max_megabytes: 256,
            http_max_connections: 16_384,
            allow_transfer_from: Vec::new(),
            notify: Vec::new(),
            tsig_keys: BTreeMap::new(),
            transfer_key: String::new(),
            answer_limit: 0,
            healthy_only: false,
            ptr_on: false,
            rate_limit: 0,
            state_source: StateSource::Auto,
            set_truncate_bit: true,
            enforce_rfc952: false,
            ip_sources: vec![IpSource::Netinfo, IpSource::Mesos, IpSource::Host],
            srv_record_default_weight: 1,
            soa_mname: "ns1.mesos".to_owned(),
            soa_rname: "root.ns1.mesos".to_owned(),
            soa_refresh: 60,
            soa_retry: 600,
            soa_expire: 86400,
            soa_minttl: 60,
            mesos_https_on: false,
            ca_cert_file: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            mesos_authentication: MesosAuth::None,
            mesos_credentials: Credentials::default(),
            iam_config_file: String::new(),
            file: PathBuf::new(),
            parsed: Parsed::default(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = self.redacted();
        if f.alternate() { write!(f, "Config {json:#}") } else { write!(f, "Config {json}") }
    }
}

/// A configuration that cannot be used. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {error}", origin(.path))]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// The file is not JSON (`message` carries serde_json's line and column).
    #[error("{}: not valid JSON: {message}", origin(.path))]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// serde_json's message.
        message: String,
    },
    /// The file is JSON but not an object.
    #[error("{}: not a JSON object (found {found})", origin(.path))]
    NotObject {
        /// The config file.
        path: PathBuf,
        /// The kind of JSON value found instead.
        found: &'static str,
    },
    /// A key has a bad value. `value` is rendered as JSON, secrets as `"***"`.
    #[error("{}: key {key:?}: value {value}: {reason}", origin(.path))]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The key, as the original's documentation spells it.
        key: String,
        /// The value, rendered as JSON (secrets as `"***"`).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// The key at fault, for [`ConfigError::Invalid`].
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// `config file "/abs/path"`, or `config` for a configuration not read
/// from a file.
fn origin(path: &Path) -> String {
    if path.as_os_str().is_empty() { "config".to_owned() } else { format!("config file {path:?}") }
}

/// A bad value, before the file name is attached.
#[derive(Debug)]
struct Problem {
    key: String,
    value: String,
    reason: String,
}

impl Problem {
    fn new(key: impl Into<String>, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem { key: key.into(), value: value.into(), reason: reason.into() }
    }

    fn into_error(self, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            key: self.key,
            value: self.value,
            reason: self.reason,
        }
    }
}

/// A string as a JSON literal, for error messages.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// A list of strings as a JSON literal, for error messages.
fn quote_list(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(","))
}

impl Config {
    /// Reads, parses and validates the config file at `path` (`~/` at the
    /// start is replaced by `$HOME/`, then the path is made absolute).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = absolute_config_path(path)?;
        let bytes = std::fs::read(&file)
            .map_err(|error| ConfigError::Read { path: file.clone(), error })?;
        // Invalid UTF-8 inside strings becomes U+FFFD, as Go's decoder does.
        let text = String::from_utf8_lossy(&bytes);
        Config::from_json(&text, file)
    }

    /// Parses the JSON `text` over the defaults and validates the result;
    /// `file` is recorded in [`Config::file`] and named in errors.
    pub fn from_json(text: &str, file: PathBuf) -> Result<Config, ConfigError> {
        let mut config = Config::parse_json(text, file)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule, in the original's order, and normalises: the domain
    /// is lower-cased, zone names too, the SOA names end with one dot,
    /// `timeout` 0 becomes 5, and an empty `resolvers` (with `externalon`)
    /// is filled from `/etc/resolv.conf`. On success, [`Config::parsed`]
    /// holds the address settings, parsed.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        self.validate_with_resolv_conf(Path::new(RESOLV_CONF))
    }

    /// [`Config::validate`], reading the fallback resolvers from `resolv_conf`.
    #[doc(hidden)]
    pub fn validate_with_resolv_conf(&mut self, resolv_conf: &Path) -> Result<(), ConfigError> {
        self.check(resolv_conf).map_err(|problem| problem.into_error(&self.file))
    }

    /// The configuration as the original's JSON (`/v1/config`): its Go field
    /// names (`Masters`, `RefreshSeconds`, `HttpPort`, `SOAMname`,
    /// `IPSources`, `MesosCredentials`, ...), with the credentials' secret
    /// and any password in the `zk` URL replaced by `"***"`.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }
}

/// `path` with a leading `~/` replaced by `$HOME/` (or `$USERPROFILE/`, as
/// the original), made absolute.
fn absolute_config_path(path: &Path) -> Result<PathBuf, ConfigError> {
    let expanded = match path.to_str().and_then(|p| p.strip_prefix("~/")) {
        Some(rest) => {
            let home = ["USERPROFILE", "HOME"]
                .iter()
                .filter_map(std::env::var_os)
                .find(|dir| !dir.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            home.join(rest)
        }
        None => path.to_path_buf(),
    };
    std::path::absolute(&expanded).map_err(|error| ConfigError::Read { path: expanded, error })
}

/// Serializes `zk` with any URL password replaced by `"***"`.
fn serialize_zk<S: Serializer>(zk: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url_password(zk, REDACTED))
}

/// Serializes a map of secrets with every value replaced by `"***"`.
fn serialize_secrets<S: Serializer>(
    secrets: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(secrets.keys().map(|name| (name, REDACTED)))
}

fn serialize_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}
