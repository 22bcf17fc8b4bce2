//! The configuration file (README, Configuration): reading the original Mesos-DNS
//! `config.json`, with its key names, defaults and case-insensitive key
//! matching, and validating it with the original's rules and order.
//!
//! Everything that is wrong with a configuration is reported as one
//! [`ConfigError`] line naming the key and the offending value. Secrets (the
//! Mesos credentials' secret, a password in the `zk` URL) never appear in an
//! error, in `Debug` output, nor in [`Config::redacted`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};

use crate::addr::{parse_nonzero_port, redact_url_password, split_host_port};

/// The file consulted for upstream resolvers when `resolvers` is empty.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Longest accepted value for the settings counted in seconds
/// (`refreshSeconds`, `timeout`, ...): about 136 years, far from any
/// timer overflow.
const MAX_SECONDS: u64 = u32::MAX as u64;

/// Key names as the original's documentation spells them; used in every error message.
mod key {
    pub const MASTERS: &str = "masters";
    pub const ZK: &str = "zk";
    pub const ZK_DETECTION_TIMEOUT: &str = "zkDetectionTimeout";
    pub const REFRESH_SECONDS: &str = "refreshSeconds";
    pub const STATE_TIMEOUT_SECONDS: &str = "stateTimeoutSeconds";
    pub const TTL: &str = "ttl";
    pub const DOMAIN: &str = "domain";
    pub const PORT: &str = "port";
    pub const RESOLVERS: &str = "resolvers";
    pub const ZONE_RESOLVERS: &str = "zoneResolvers";
    pub const TIMEOUT: &str = "timeout";
    pub const LISTENER: &str = "listener";
    pub const HTTP_LISTENER: &str = "httpListener";
    pub const HTTP_PORT: &str = "httpport";
    pub const DNS_ON: &str = "dnson";
    pub const HTTP_ON: &str = "httpon";
    pub const EXTERNAL_ON: &str = "externalon";
    pub const RECURSE_ON: &str = "recurseon";
    pub const ENUMERATION_ON: &str = "enumerationon";
    pub const HEALTH_STALE_REFRESHES: &str = "healthStaleRefreshes";
    pub const ALLOW_FORWARD_FROM: &str = "allowForwardFrom";
    pub const STATE_MAX_MEGABYTES: &str = "stateMaxMegabytes";
    pub const SET_TRUNCATE_BIT: &str = "SetTruncateBit";
    pub const ENFORCE_RFC952: &str = "enforceRFC952";
    pub const IP_SOURCES: &str = "IPSources";
    pub const SRV_RECORD_DEFAULT_WEIGHT: &str = "SRVRecordDefaultWeight";
    pub const SOA_MNAME: &str = "SOAMname";
    pub const SOA_RNAME: &str = "SOARname";
    pub const SOA_SERIAL: &str = "SOASerial";
    pub const SOA_REFRESH: &str = "SOARefresh";
    pub const SOA_RETRY: &str = "SOARetry";
    pub const SOA_EXPIRE: &str = "SOAExpire";
    pub const SOA_MINTTL: &str = "SOAMinttl";
    pub const MESOS_HTTPS_ON: &str = "mesosHTTPSOn";
    pub const CA_CERT_FILE: &str = "caCertFile";
    pub const CERT_FILE: &str = "certFile";
    pub const KEY_FILE: &str = "keyFile";
    pub const MESOS_AUTHENTICATION: &str = "mesosAuthentication";
    pub const MESOS_CREDENTIALS: &str = "mesosCredentials";
    pub const PRINCIPAL: &str = "mesosCredentials.principal";
    pub const SECRET: &str = "mesosCredentials.secret";
    pub const IAM_CONFIG_FILE: &str = "IAMConfigFile";
    pub const FILE: &str = "File";
}

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
    pub principal: String,
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
    #[serde(rename = "Masters")]
    pub masters: Vec<String>,
    #[serde(rename = "Zk", serialize_with = "serialize_zk")]
    pub zk: String,
    #[serde(rename = "ZkDetectionTimeout")]
    pub zk_detection_timeout: u64,
    #[serde(rename = "RefreshSeconds")]
    pub refresh_seconds: u64,
    #[serde(rename = "StateTimeoutSeconds")]
    pub state_timeout_seconds: u64,
    #[serde(rename = "TTL")]
    pub ttl: u32,
    #[serde(rename = "Domain")]
    pub domain: String,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Resolvers")]
    pub resolvers: Vec<String>,
    #[serde(rename = "ZoneResolvers")]
    pub zone_resolvers: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Timeout")]
    pub timeout: u64,
    /// Must be an IP literal (a check the original does not make: a host name
    /// here could not give the SOA name server its address).
    #[serde(rename = "Listener")]
    pub listener: String,
    /// Must be an IP literal (a check the original does not make).
    #[serde(rename = "HTTPListener")]
    pub http_listener: String,
    #[serde(rename = "HttpPort")]
    pub http_port: u16,
    #[serde(rename = "DnsOn")]
    pub dns_on: bool,
    #[serde(rename = "HttpOn")]
    pub http_on: bool,
    #[serde(rename = "ExternalOn")]
    pub external_on: bool,
    #[serde(rename = "RecurseOn")]
    pub recurse_on: bool,
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
    #[serde(rename = "SetTruncateBit")]
    pub set_truncate_bit: bool,
    #[serde(rename = "EnforceRFC952")]
    pub enforce_rfc952: bool,
    #[serde(rename = "IPSources")]
    pub ip_sources: Vec<IpSource>,
    #[serde(rename = "SRVRecordDefaultWeight")]
    pub srv_record_default_weight: u16,
    #[serde(rename = "SOAMname")]
    pub soa_mname: String,
    #[serde(rename = "SOARname")]
    pub soa_rname: String,
    #[serde(rename = "SOARefresh")]
    pub soa_refresh: u32,
    #[serde(rename = "SOARetry")]
    pub soa_retry: u32,
    #[serde(rename = "SOAExpire")]
    pub soa_expire: u32,
    #[serde(rename = "SOAMinttl")]
    pub soa_minttl: u32,
    #[serde(rename = "MesosHTTPSOn")]
    pub mesos_https_on: bool,
    #[serde(rename = "CACertFile")]
    pub ca_cert_file: String,
    #[serde(rename = "CertFile")]
    pub cert_file: String,
    #[serde(rename = "KeyFile")]
    pub key_file: String,
    #[serde(rename = "MesosAuthentication")]
    pub mesos_authentication: MesosAuth,
    #[serde(rename = "MesosCredentials")]
    pub mesos_credentials: Credentials,
    #[serde(rename = "IAMConfigFile")]
    pub iam_config_file: String,
    /// The absolute path of the file read (empty when not read from a file).
    #[serde(rename = "File", serialize_with = "serialize_path")]
    pub file: PathBuf,
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
    Read { path: PathBuf, error: std::io::Error },
    /// The file is not JSON (`message` carries serde_json's line and column).
    #[error("{}: not valid JSON: {message}", origin(.path))]
    Syntax { path: PathBuf, message: String },
    /// The file is JSON but not an object.
    #[error("{}: not a JSON object (found {found})", origin(.path))]
    NotObject { path: PathBuf, found: &'static str },
    /// A key has a bad value. `value` is rendered as JSON, secrets as `"***"`.
    #[error("{}: key {key:?}: value {value}: {reason}", origin(.path))]
    Invalid { path: PathBuf, key: String, value: String, reason: String },
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

    /// Parses the JSON `text` over the defaults, without validation.
    fn parse_json(text: &str, file: PathBuf) -> Result<Config, ConfigError> {
        let document: Json = serde_json::from_str(text)
            .map_err(|e| ConfigError::Syntax { path: file.clone(), message: e.to_string() })?;
        let Json::Object(entries) = document else {
            return Err(ConfigError::NotObject { path: file, found: document.kind() });
        };
        let mut config = Config { file, ..Config::default() };
        for (name, value) in &entries {
            if let Err(problem) = config.apply(name, value) {
                return Err(problem.into_error(&config.file));
            }
        }
        Ok(config)
    }

    /// Checks every rule, in the original's order, and normalises: the domain
    /// is lower-cased, zone names too, the SOA names end with one dot,
    /// `timeout` 0 becomes 5, and an empty `resolvers` (with `externalon`)
    /// is filled from `/etc/resolv.conf`.
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

    /// The upstream resolvers as socket addresses (port 53 when not given).
    /// Entries that do not parse are skipped; none do after validation.
    pub fn resolver_addrs(&self) -> Vec<SocketAddr> {
        self.resolvers.iter().filter_map(|r| parse_resolver(r).ok()).collect()
    }

    /// The zone resolvers as socket addresses, by (lower-case) zone.
    pub fn zone_resolver_addrs(&self) -> BTreeMap<String, Vec<SocketAddr>> {
        self.zone_resolvers
            .iter()
            .map(|(zone, rs)| {
                let addrs = rs.iter().filter_map(|r| parse_resolver(r).ok()).collect();
                (zone.to_ascii_lowercase(), addrs)
            })
            .collect()
    }

    /// Sets the field named (case-insensitively) `name` from `value`.
    /// A JSON `null` leaves a scalar unchanged and empties a list, as Go does.
    fn apply(&mut self, name: &str, value: &Json) -> Result<(), Problem> {
        match fold_key(name).as_str() {
            "masters" => self.masters = strings(key::MASTERS, value)?,
            "zk" => set(&mut self.zk, string(key::ZK, value)?),
            "zkdetectiontimeout" => set(
                &mut self.zk_detection_timeout,
                integer(key::ZK_DETECTION_TIMEOUT, value, MAX_SECONDS)?,
            ),
            "refreshseconds" => {
                set(&mut self.refresh_seconds, integer(key::REFRESH_SECONDS, value, MAX_SECONDS)?)
            }
            "statetimeoutseconds" => set(
                &mut self.state_timeout_seconds,
                integer(key::STATE_TIMEOUT_SECONDS, value, MAX_SECONDS)?,
            ),
            "ttl" => set(&mut self.ttl, integer(key::TTL, value, u32::MAX.into())?),
            "domain" => set(&mut self.domain, string(key::DOMAIN, value)?),
            "port" => set(&mut self.port, integer(key::PORT, value, u16::MAX.into())?),
            "resolvers" => self.resolvers = strings(key::RESOLVERS, value)?,
            "zoneresolvers" => self.zone_resolvers = zones(value)?,
            "timeout" => set(&mut self.timeout, integer(key::TIMEOUT, value, MAX_SECONDS)?),
            "listener" => set(&mut self.listener, string(key::LISTENER, value)?),
            "httplistener" => set(&mut self.http_listener, string(key::HTTP_LISTENER, value)?),
            "httpport" => {
                set(&mut self.http_port, integer(key::HTTP_PORT, value, u16::MAX.into())?)
            }
            "dnson" => set(&mut self.dns_on, boolean(key::DNS_ON, value)?),
            "httpon" => set(&mut self.http_on, boolean(key::HTTP_ON, value)?),
            "externalon" => set(&mut self.external_on, boolean(key::EXTERNAL_ON, value)?),
            "recurseon" => set(&mut self.recurse_on, boolean(key::RECURSE_ON, value)?),
            "enumerationon" => set(&mut self.enumeration_on, boolean(key::ENUMERATION_ON, value)?),
            "statemaxmegabytes" => set(
                &mut self.state_max_megabytes,
                integer(key::STATE_MAX_MEGABYTES, value, 1 << 20)?,
            ),
            "allowforwardfrom" => {
                self.allow_forward_from = strings(key::ALLOW_FORWARD_FROM, value)?;
            }
            "healthstalerefreshes" => set(
                &mut self.health_stale_refreshes,
                integer(key::HEALTH_STALE_REFRESHES, value, MAX_SECONDS)?,
            ),
            "settruncatebit" => {
                set(&mut self.set_truncate_bit, boolean(key::SET_TRUNCATE_BIT, value)?)
            }
            "enforcerfc952" => set(&mut self.enforce_rfc952, boolean(key::ENFORCE_RFC952, value)?),
            "ipsources" => self.ip_sources = ip_sources(value)?,
            "srvrecorddefaultweight" => set(
                &mut self.srv_record_default_weight,
                integer(key::SRV_RECORD_DEFAULT_WEIGHT, value, u16::MAX.into())?,
            ),
            "soamname" => set(&mut self.soa_mname, string(key::SOA_MNAME, value)?),
            "soarname" => set(&mut self.soa_rname, string(key::SOA_RNAME, value)?),
            // Accepted (and type-checked) as the original does, then unused:
            // the serial is the time of each zone generation.
            "soaserial" => {
                integer::<u32>(key::SOA_SERIAL, value, u32::MAX.into())?;
            }
            "soarefresh" => {
                set(&mut self.soa_refresh, integer(key::SOA_REFRESH, value, u32::MAX.into())?)
            }
            "soaretry" => {
                set(&mut self.soa_retry, integer(key::SOA_RETRY, value, u32::MAX.into())?)
            }
            "soaexpire" => {
                set(&mut self.soa_expire, integer(key::SOA_EXPIRE, value, u32::MAX.into())?)
            }
            "soaminttl" => {
                set(&mut self.soa_minttl, integer(key::SOA_MINTTL, value, u32::MAX.into())?)
            }
            "mesoshttpson" => set(&mut self.mesos_https_on, boolean(key::MESOS_HTTPS_ON, value)?),
            "cacertfile" => set(&mut self.ca_cert_file, string(key::CA_CERT_FILE, value)?),
            "certfile" => set(&mut self.cert_file, string(key::CERT_FILE, value)?),
            "keyfile" => set(&mut self.key_file, string(key::KEY_FILE, value)?),
            "mesosauthentication" => {
                if let Some(s) = string(key::MESOS_AUTHENTICATION, value)? {
                    self.mesos_authentication = s.parse().map_err(|reason| {
                        Problem::new(key::MESOS_AUTHENTICATION, quote(&s), reason)
                    })?;
                }
            }
            "mesoscredentials" => apply_credentials(&mut self.mesos_credentials, value)?,
            "iamconfigfile" => set(&mut self.iam_config_file, string(key::IAM_CONFIG_FILE, value)?),
            // The original lets the file name its own path; we record the
            // path actually read.
            "file" => {
                string(key::FILE, value)?;
            }
            _ => tracing::warn!(key = name, "unknown config key ignored"),
        }
        Ok(())
    }

    /// All the validation rules, in the original's order (`SetConfig`).
    fn check(&mut self, resolv_conf: &Path) -> Result<(), Problem> {
        // (1) something to serve
        if !self.dns_on && !self.http_on {
            return Err(Problem::new(
                key::DNS_ON,
                "false",
                "either dnson or httpon must be true (both are false)",
            ));
        }
        // (2) somewhere to get the state from
        if self.masters.is_empty() && self.zk.is_empty() {
            return Err(Problem::new(
                key::MASTERS,
                "[]",
                "specify Mesos masters or zk (neither is given)",
            ));
        }
        // Ours: a ZooKeeper URL that detection can use (the original only
        // failed when starting its detector).
        if !self.zk.is_empty()
            && let Err(e) = crate::detect::ZkUrl::parse(&self.zk)
        {
            return Err(Problem::new(
                key::ZK,
                quote(&redact_url_password(&self.zk, REDACTED)),
                e.to_string(),
            ));
        }
        // (3) masters
        unique_addresses(key::MASTERS, &self.masters, "master", parse_master)?;
        // (4) upstream resolvers, only used with externalon
        if self.external_on {
            if self.resolvers.is_empty() {
                self.resolvers = local_nameservers(resolv_conf)?;
                if self.resolvers.is_empty() {
                    tracing::warn!(
                        file = %resolv_conf.display(),
                        "no upstream resolvers: queries outside the domain will be refused"
                    );
                }
            }
            unique_addresses(key::RESOLVERS, &self.resolvers, "resolver", |r| {
                parse_resolver(r).map(|a| (a.ip().to_string(), a.port()))
            })?;
            self.zone_resolvers = checked_zone_resolvers(&self.zone_resolvers, &self.domain)?;
        }
        // (5) IP sources
        check_ip_sources(&self.ip_sources)?;
        // (6) timers
        positive(key::STATE_TIMEOUT_SECONDS, self.state_timeout_seconds)?;
        positive(key::REFRESH_SECONDS, self.refresh_seconds)?;
        positive(key::STATE_MAX_MEGABYTES, self.state_max_megabytes)?;
        if self.timeout == 0 {
            self.timeout = 5; // the original's forwarder does the same
        }
        // (7) domain
        self.domain = self.domain.to_lowercase();
        if !is_valid_domain(&self.domain) {
            return Err(Problem::new(
                key::DOMAIN,
                quote(&self.domain),
                "not a valid domain name (letters, digits and '-' in labels separated by '.')",
            ));
        }
        // SOA names: absolute, '@' in the mailbox written as '.'
        self.soa_mname = fully_qualified(&self.soa_mname);
        self.soa_rname = fully_qualified(&self.soa_rname.replace('@', "."));
        // (8) client certificate
        if !self.cert_file.is_empty() && self.key_file.is_empty() {
            return Err(Problem::new(
                key::KEY_FILE,
                "\"\"",
                format!("missing private key: certFile is {}", quote(&self.cert_file)),
            ));
        }
        if self.cert_file.is_empty() && !self.key_file.is_empty() {
            return Err(Problem::new(
                key::CERT_FILE,
                "\"\"",
                format!("missing certificate: keyFile is {}", quote(&self.key_file)),
            ));
        }
        // (9) Mesos authentication
        self.check_authentication()?;
        // Ours: the forwarding allow-list is CIDRs or IPs.
        for net in &self.allow_forward_from {
            parse_net(net)
                .map_err(|reason| Problem::new(key::ALLOW_FORWARD_FROM, quote(net), reason))?;
        }
        // Ours: listeners must be IP literals.
        ip_literal(key::LISTENER, &self.listener)?;
        ip_literal(key::HTTP_LISTENER, &self.http_listener)?;
        Ok(())
    }

    fn check_authentication(&self) -> Result<(), Problem> {
        match self.mesos_authentication {
            MesosAuth::Basic if self.mesos_credentials.principal.is_empty() => Err(Problem::new(
                key::PRINCIPAL,
                "\"\"",
                "mesosAuthentication \"basic\" requires mesosCredentials with a principal",
            )),
            MesosAuth::Iam if self.iam_config_file.is_empty() => Err(Problem::new(
                key::IAM_CONFIG_FILE,
                "\"\"",
                "mesosAuthentication \"iam\" requires IAMConfigFile",
            )),
            MesosAuth::None => {
                if !self.mesos_credentials.principal.is_empty() {
                    tracing::warn!(
                        "mesosCredentials is set but mesosAuthentication is \"\": credentials unused"
                    );
                }
                if !self.iam_config_file.is_empty() {
                    tracing::warn!(
                        "IAMConfigFile is set but mesosAuthentication is \"\": file unused"
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Checks that every entry parses and that no two are the same once parsed.
fn unique_addresses(
    key: &str,
    list: &[String],
    what: &str,
    parse: impl Fn(&str) -> Result<(String, u16), String>,
) -> Result<(), Problem> {
    let mut seen: HashMap<(String, u16), &str> = HashMap::new();
    for entry in list {
        let normalised = parse(entry).map_err(|reason| Problem::new(key, quote(entry), reason))?;
        if let Some(first) = seen.insert(normalised, entry) {
            return Err(Problem::new(
                key,
                quote(entry),
                format!("duplicate {what} (same as {})", quote(first)),
            ));
        }
    }
    Ok(())
}

/// Validates the zone resolvers against the Mesos `domain` and returns them
/// with lower-case zone names.
fn checked_zone_resolvers(
    zones: &BTreeMap<String, Vec<String>>,
    domain: &str,
) -> Result<BTreeMap<String, Vec<String>>, Problem> {
    let domain = domain.to_lowercase();
    let mut checked = BTreeMap::new();
    for (zone, resolvers) in zones {
        let name = zone.to_lowercase();
        if resolvers.is_empty() {
            return Err(Problem::new(key::ZONE_RESOLVERS, quote(zone), "zone has no resolvers"));
        }
        if !is_valid_domain(&name) {
            return Err(Problem::new(
                key::ZONE_RESOLVERS,
                quote(zone),
                "not a valid zone name (letters, digits and '-' in labels separated by '.')",
            ));
        }
        let mut seen: HashMap<(String, u16), &str> = HashMap::new();
        for resolver in resolvers {
            let addr = parse_resolver(resolver).map_err(|reason| {
                Problem::new(
                    key::ZONE_RESOLVERS,
                    quote(resolver),
                    format!("zone {}: {reason}", quote(zone)),
                )
            })?;
            if let Some(first) = seen.insert((addr.ip().to_string(), addr.port()), resolver) {
                return Err(Problem::new(
                    key::ZONE_RESOLVERS,
                    quote(resolver),
                    format!("zone {}: duplicate resolver (same as {})", quote(zone), quote(first)),
                ));
            }
        }
        if name == domain {
            return Err(Problem::new(
                key::ZONE_RESOLVERS,
                quote(zone),
                "a zone resolver may not be given for the Mesos domain",
            ));
        }
        if checked.insert(name, resolvers.clone()).is_some() {
            return Err(Problem::new(
                key::ZONE_RESOLVERS,
                quote(zone),
                "zone given twice (zone names are case-insensitive)",
            ));
        }
    }
    // A zone may not cover the Mesos domain, nor lie inside it (its names
    // are never forwarded). Nested zones are fine: the longest match wins
    // (the original refused them as "ambiguous").
    let dotted_domain = format!(".{domain}");
    for zone in checked.keys() {
        let dotted = format!(".{zone}");
        let reason = if dotted_domain.ends_with(&dotted) {
            format!(
                "ambiguous zone resolvers: the Mesos domain {dotted_domain} is masked by {dotted}"
            )
        } else if dotted.ends_with(&dotted_domain) {
            format!(
                "ambiguous zone resolvers: {dotted} is masked by the Mesos domain {dotted_domain}"
            )
        } else {
            continue;
        };
        return Err(Problem::new(key::ZONE_RESOLVERS, quote(zone), reason));
    }
    Ok(checked)
}

/// A CIDR (`10.0.0.0/8`) or a single address (`10.0.0.1`).
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| "not a CIDR (10.0.0.0/8) or an IP address".to_owned())
}

fn check_ip_sources(sources: &[IpSource]) -> Result<(), Problem> {
    let rendered = || {
        let names: Vec<String> = sources.iter().map(|s| s.as_str().to_owned()).collect();
        quote_list(&names)
    };
    if sources.is_empty() {
        return Err(Problem::new(key::IP_SOURCES, "[]", "empty IP sources"));
    }
    for (i, source) in sources.iter().enumerate() {
        if sources[..i].contains(source) {
            return Err(Problem::new(
                key::IP_SOURCES,
                rendered(),
                format!("duplicate IP source {}", quote(source.as_str())),
            ));
        }
    }
    Ok(())
}

fn positive(key: &str, value: u64) -> Result<(), Problem> {
    if value == 0 {
        return Err(Problem::new(key, "0", "must be greater than 0"));
    }
    Ok(())
}

fn ip_literal(key: &str, value: &str) -> Result<(), Problem> {
    match value.parse::<IpAddr>() {
        Ok(_) => Ok(()),
        Err(_) => Err(Problem::new(
            key,
            quote(value),
            "must be an IP address such as \"0.0.0.0\" (host names are not accepted)",
        )),
    }
}

/// `name` with trailing dots trimmed and exactly one added.
fn fully_qualified(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// The original's domain rule, `^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$`.
pub fn is_valid_domain(name: &str) -> bool {
    name.split('.').all(|label| {
        !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Parses a `masters` entry, `host:port` (an IPv6 address in brackets), into
/// its normalised host (an IP in canonical form, or a lower-case host name)
/// and port. Host names are not checked further, as in the original.
pub fn parse_master(s: &str) -> Result<(String, u16), String> {
    let (host, port) = split_host_port(s).map_err(|why| format!("illegal host:port ({why})"))?;
    let port = parse_nonzero_port(port).ok_or("illegal host:port (port must be 1 to 65535)")?;
    if host.is_empty() {
        return Err("illegal host:port (empty host)".to_owned());
    }
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => host.to_ascii_lowercase(),
    };
    Ok((host, port))
}

/// Parses a resolver, `IP` or `IP:port` (IPv6 with a port in brackets; port
/// 53 when not given); the IP must be a literal.
pub fn parse_resolver(s: &str) -> Result<SocketAddr, String> {
    let (host, port) = match split_host_port(s) {
        Ok((host, port)) => (host, Some(port)),
        Err(_) => (s.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(s), None),
    };
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("illegal IP {} (a resolver must be an IP address)", quote(host)))?;
    let port = match port {
        Some(p) => parse_nonzero_port(p).ok_or("illegal port (must be 1 to 65535)")?,
        None => 53,
    };
    Ok(SocketAddr::new(ip.to_canonical(), port))
}

/// The `nameserver` entries of a resolv.conf text, without this host's own
/// addresses (`own_addrs`), in file order.
#[doc(hidden)]
pub fn nameservers_from_resolv_conf(text: &str, own_addrs: &[IpAddr]) -> Vec<String> {
    let own: Vec<IpAddr> = own_addrs.iter().map(|ip| ip.to_canonical()).collect();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            match (fields.next(), fields.next()) {
                (Some("nameserver"), Some(server)) => Some(server),
                _ => None,
            }
        })
        .filter(|server| match server.parse::<IpAddr>() {
            Ok(ip) => !own.contains(&ip.to_canonical()),
            Err(_) => true,
        })
        .map(str::to_owned)
        .collect()
}

/// The non-local nameservers of `resolv_conf`.
fn local_nameservers(resolv_conf: &Path) -> Result<Vec<String>, Problem> {
    let text = std::fs::read_to_string(resolv_conf).map_err(|e| {
        Problem::new(
            key::RESOLVERS,
            "[]",
            format!(
                "no resolvers given and {} cannot be read: {e}",
                quote(&resolv_conf.display().to_string())
            ),
        )
    })?;
    let own: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list this host's addresses");
            Vec::new()
        }
    };
    Ok(nameservers_from_resolv_conf(&text, &own))
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

/// Case-folds a key as Go's encoding/json compares field names.
fn fold_key(name: &str) -> String {
    name.chars().flat_map(char::to_lowercase).map(|c| if c == 'ſ' { 's' } else { c }).collect()
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn type_error(key: &str, value: &Json, expected: &str) -> Problem {
    Problem::new(key, value.render(), format!("expected {expected}"))
}

fn boolean(key: &str, value: &Json) -> Result<Option<bool>, Problem> {
    match value {
        Json::Null => Ok(None),
        Json::Bool(b) => Ok(Some(*b)),
        other => Err(type_error(key, other, "true or false")),
    }
}

fn string(key: &str, value: &Json) -> Result<Option<String>, Problem> {
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.clone())),
        other => Err(type_error(key, other, "a string")),
    }
}

/// An unsigned integer up to `max`; integral floats (`60.0`) are accepted.
fn integer<T: TryFrom<u64>>(key: &str, value: &Json, max: u64) -> Result<Option<T>, Problem> {
    let out_of_range = || type_error(key, value, &format!("an integer from 0 to {max}"));
    let n = match value {
        Json::Null => return Ok(None),
        Json::Number(n) => n,
        other => {
            return Err(type_error(key, other, &format!("an integer from 0 to {max}")));
        }
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 18_446_744_073_709_551_616.0)
            .map(|f| f as u64)
    });
    match whole {
        Some(w) if w <= max => T::try_from(w).map(Some).map_err(|_| out_of_range()),
        _ => Err(out_of_range()),
    }
}

/// A list of strings; `null` is the empty list, a `null` item the empty
/// string (as Go's decoder).
fn strings(key: &str, value: &Json) -> Result<Vec<String>, Problem> {
    match value {
        Json::Null => Ok(Vec::new()),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::Null => Ok(String::new()),
                Json::String(s) => Ok(s.clone()),
                other => Err(type_error(key, other, "a string in the list")),
            })
            .collect(),
        other => Err(type_error(key, other, "a list of strings")),
    }
}

fn ip_sources(value: &Json) -> Result<Vec<IpSource>, Problem> {
    strings(key::IP_SOURCES, value)?
        .iter()
        .map(|s| {
            s.parse().map_err(|reason: String| Problem::new(key::IP_SOURCES, quote(s), reason))
        })
        .collect()
}

fn zones(value: &Json) -> Result<BTreeMap<String, Vec<String>>, Problem> {
    match value {
        Json::Null => Ok(BTreeMap::new()),
        Json::Object(entries) => {
            let mut zones = BTreeMap::new();
            for (zone, resolvers) in entries {
                zones.insert(zone.clone(), strings(key::ZONE_RESOLVERS, resolvers)?);
            }
            Ok(zones)
        }
        other => Err(type_error(
            key::ZONE_RESOLVERS,
            other,
            "an object mapping zones to lists of resolvers",
        )),
    }
}

/// Merges a `mesosCredentials` object (keys `principal` and `secret`,
/// case-insensitive). The secret is never shown in an error.
fn apply_credentials(credentials: &mut Credentials, value: &Json) -> Result<(), Problem> {
    let entries = match value {
        Json::Null => return Ok(()),
        Json::Object(entries) => entries,
        _ => {
            return Err(Problem::new(
                key::MESOS_CREDENTIALS,
                quote(REDACTED),
                format!(
                    "expected an object {{\"principal\": ..., \"secret\": ...}} (found {})",
                    value.kind()
                ),
            ));
        }
    };
    for (name, item) in entries {
        match fold_key(name).as_str() {
            "principal" => set(&mut credentials.principal, string(key::PRINCIPAL, item)?),
            "secret" => match item {
                Json::Null => {}
                Json::String(s) => credentials.secret.clone_from(s),
                other => {
                    return Err(Problem::new(
                        key::SECRET,
                        quote(REDACTED),
                        format!("expected a string (found {})", other.kind()),
                    ));
                }
            },
            _ => {
                tracing::warn!(key = %format!("{}.{name}", key::MESOS_CREDENTIALS), "unknown config key ignored")
            }
        }
    }
    Ok(())
}

/// Serializes `zk` with any URL password replaced by `"***"`.
fn serialize_zk<S: Serializer>(zk: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url_password(zk, REDACTED))
}

fn serialize_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// A JSON document that keeps object keys in file order (serde_json's `Value`
/// sorts them), so that among keys differing only in case the last wins, as
/// with Go's decoder.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Longest rendering of a value in an error message.
const MAX_RENDERED: usize = 120;

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// Compact JSON, shortened with `...` past [`MAX_RENDERED`] characters.
    fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        if out.chars().count() > MAX_RENDERED {
            let mut cut: String = out.chars().take(MAX_RENDERED).collect();
            cut.push_str("...");
            cut
        } else {
            out
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => out.push_str(&quote(s)),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (name, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quote(name));
                    out.push(':');
                    item.write(out);
                }
                out.push('}');
            }
        }
        if out.len() > MAX_RENDERED * 8 {
            // Enough for the shortened rendering; stop growing.
            out.truncate(out.floor_char_boundary(MAX_RENDERED * 8));
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold_key("HttpPort"), "httpport");
        assert_eq!(fold_key("HTTPPORT"), "httpport");
        assert_eq!(fold_key("\u{017F}oamname"), "soamname");
        assert_eq!(fold_key("zkdetectiontimeout"), "zkdetectiontimeout");
    }

    #[test]
    fn render_is_compact_and_bounded() {
        let v: Json =
            serde_json::from_str(r#"{"a": [1, "x", null, true], "b": 1.5}"#).unwrap_or(Json::Null);
        assert_eq!(v.render(), r#"{"a":[1,"x",null,true],"b":1.5}"#);
        let long = Json::String("é".repeat(10_000));
        let rendered = long.render();
        assert!(rendered.ends_with("..."));
        assert_eq!(rendered.chars().count(), MAX_RENDERED + 3);
    }

    #[test]
    fn json_keeps_key_order_and_duplicates() {
        let v: Json = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap_or(Json::Null);
        let Json::Object(entries) = v else {
            panic!("not an object");
        };
        let names: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["b", "a", "b"]);
    }
}
