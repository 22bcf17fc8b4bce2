//! Reading a config text: the JSON document, with object keys kept in file
//! order ([`Json`]), and each key, matched case-insensitively as Go's
//! decoder does, type-checked and set on a [`Config`] over its defaults.
//! Values are only checked for their JSON type and range here; the rules
//! are in `validate`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Config, ConfigError, Credentials, IpSource, Problem, REDACTED, key, quote};

/// Longest accepted value for the settings counted in seconds
/// (`refreshSeconds`, `timeout`, ...): about 136 years, far from any
/// timer overflow.
const MAX_SECONDS: u64 = u32::MAX as u64;

impl Config {
    /// Parses the JSON `text` over the defaults, without validation.
    pub(super) fn parse_json(text: &str, file: PathBuf) -> Result<Config, ConfigError> {
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
            "httpmaxconnections" => set(
                &mut self.http_max_connections,
                integer(key::HTTP_MAX_CONNECTIONS, value, 1 << 20)?,
            ),
            "statesource" => {
                if let Some(s) = string(key::STATE_SOURCE, value)? {
                    self.state_source = s
                        .parse()
                        .map_err(|reason| Problem::new(key::STATE_SOURCE, quote(&s), reason))?;
                }
            }
            "allowtransferfrom" => {
                self.allow_transfer_from = strings(key::ALLOW_TRANSFER_FROM, value)?;
            }
            "notify" => self.notify = strings(key::NOTIFY, value)?,
            "tsigkeys" => self.tsig_keys = secrets(key::TSIG_KEYS, value)?,
            "transferkey" => set(&mut self.transfer_key, string(key::TRANSFER_KEY, value)?),
            "healthyonly" => set(&mut self.healthy_only, boolean(key::HEALTHY_ONLY, value)?),
            "ptron" => set(&mut self.ptr_on, boolean(key::PTR_ON, value)?),
            "answerlimit" => {
                set(&mut self.answer_limit, integer(key::ANSWER_LIMIT, value, u16::MAX.into())?)
            }
            "ratelimit" => {
                set(&mut self.rate_limit, integer(key::RATE_LIMIT, value, u32::MAX.into())?)
            }

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

/// An object of secrets by name (`tsigKeys`); a value is never shown in an
/// error.
fn secrets(key: &str, value: &Json) -> Result<BTreeMap<String, String>, Problem> {
    let entries = match value {
        Json::Null => return Ok(BTreeMap::new()),
        Json::Object(entries) => entries,
        other => {
            return Err(Problem::new(
                key,
                quote(REDACTED),
                format!("expected an object mapping names to secrets (found {})", other.kind()),
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (name, secret) in entries {
        match secret {
            Json::String(s) => {
                out.insert(name.clone(), s.clone());
            }
            other => {
                return Err(Problem::new(
                    format!("{key}.{name}"),
                    quote(REDACTED),
                    format!("expected a string (found {})", other.kind()),
                ));
            }
        }
    }
    Ok(out)
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
