//! The validation rules, in the original's order (its `SetConfig`), and
//! the parsing of the settings that are addresses: each is parsed here,
//! once, into [`Parsed`], or reported as one [`Problem`].

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::addr::{parse_nonzero_port, redact_url_password, split_host_port};

use super::resolv::local_nameservers;
use super::{
    Config, IpSource, MesosAuth, NotifyTarget, Parsed, Problem, REDACTED, TransferPeer, ZkUrl, key,
    quote, quote_list,
};
use crate::proto::tsig;

impl Config {
    /// All the validation rules, in the original's order (`SetConfig`);
    /// on success, [`Config::parsed`] holds the parsed addresses.
    pub(super) fn check(&mut self, resolv_conf: &Path) -> Result<(), Problem> {
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
        let zk = if self.zk.is_empty() {
            None
        } else {
            Some(ZkUrl::parse(&self.zk).map_err(|e| {
                Problem::new(
                    key::ZK,
                    quote(&redact_url_password(&self.zk, REDACTED)),
                    e.to_string(),
                )
            })?)
        };
        // (3) masters
        unique_addresses(key::MASTERS, &self.masters, "master", parse_master)?;
        let (mut resolvers, mut zone_resolvers) = (Vec::new(), BTreeMap::new());
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
            resolvers =
                unique_addresses(key::RESOLVERS, &self.resolvers, "resolver", parse_resolver)?;
            let checked = checked_zone_resolvers(&self.zone_resolvers, &self.domain)?;
            (self.zone_resolvers, zone_resolvers) = checked;
        }
        // (5) IP sources
        check_ip_sources(&self.ip_sources)?;
        // (6) timers
        positive(key::STATE_TIMEOUT_SECONDS, self.state_timeout_seconds)?;
        positive(key::REFRESH_SECONDS, self.refresh_seconds)?;
        positive(key::STATE_MAX_MEGABYTES, self.state_max_megabytes)?;
        positive(key::HTTP_MAX_CONNECTIONS, self.http_max_connections)?;
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
        let allow_forward_from = self
            .allow_forward_from
            .iter()
            .map(|net| {
                parse_net(net)
                    .map_err(|reason| Problem::new(key::ALLOW_FORWARD_FROM, quote(net), reason))
            })
            .collect::<Result<_, _>>()?;
        // Ours: listeners must be IP literals.
        let listener = ip_literal(key::LISTENER, &self.listener)?;
        let http_listener = ip_literal(key::HTTP_LISTENER, &self.http_listener)?;
        // Ours: zone transfers, NOTIFY and their keys.
        let (allow_transfer_from, notify, tsig_keys) = self.check_transfers()?;
        self.parsed = Parsed {
            listener,
            http_listener,
            zk,
            resolvers,
            zone_resolvers,
            allow_forward_from,
            allow_transfer_from,
            notify,
            tsig_keys,
        };
        Ok(())
    }

    /// `tsigKeys` decoded; `allowTransferFrom` and `notify` parsed, each
    /// entry with the key it names or `transferKey`, which must exist.
    #[allow(clippy::type_complexity)]
    fn check_transfers(
        &self,
    ) -> Result<(Vec<TransferPeer>, Vec<NotifyTarget>, Vec<tsig::Key>), Problem> {
        let keys = self
            .tsig_keys
            .iter()
            .map(|(name, secret)| {
                tsig::Key::parse(name, secret).map_err(|reason| {
                    Problem::new(format!("{}.{name}", key::TSIG_KEYS), quote(REDACTED), reason)
                })
            })
            .collect::<Result<Vec<tsig::Key>, _>>()?;
        for (i, k) in keys.iter().enumerate() {
            if keys.iter().take(i).any(|earlier| earlier.name() == k.name()) {
                let name = self.tsig_keys.keys().nth(i).cloned().unwrap_or_default();
                return Err(Problem::new(
                    format!("{}.{name}", key::TSIG_KEYS),
                    quote(REDACTED),
                    format!("a second key named {}", k.name_text()),
                ));
            }
        }
        let default_key = match self.transfer_key.as_str() {
            "" => None,
            name => Some(known_key(&keys, key::TRANSFER_KEY, name, name)?),
        };
        let with_key = |config_key: &str, entry: &str| {
            split_key(&keys, config_key, entry, default_key.as_ref())
        };
        let mut peers = Vec::new();
        for entry in &self.allow_transfer_from {
            let (net, key) = with_key(key::ALLOW_TRANSFER_FROM, entry)?;
            let net = parse_net(&net)
                .map_err(|reason| Problem::new(key::ALLOW_TRANSFER_FROM, quote(entry), reason))?;
            peers.push(TransferPeer { net, key });
        }
        let mut targets = Vec::new();
        for entry in &self.notify {
            let (addr, key) = with_key(key::NOTIFY, entry)?;
            let addr = parse_resolver(&addr).map_err(|reason| {
                Problem::new(key::NOTIFY, quote(entry), reason.replace("a resolver", "a secondary"))
            })?;
            targets.push(NotifyTarget { addr, key });
        }
        Ok((peers, targets, keys))
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

/// Parses every entry, checking that no two are the same once parsed.
fn unique_addresses<T: Clone + Eq + Hash>(
    key: &str,
    list: &[String],
    what: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, Problem> {
    let mut seen: HashMap<T, &str> = HashMap::new();
    let mut parsed = Vec::with_capacity(list.len());
    for entry in list {
        let normalised = parse(entry).map_err(|reason| Problem::new(key, quote(entry), reason))?;
        if let Some(first) = seen.insert(normalised.clone(), entry) {
            return Err(Problem::new(
                key,
                quote(entry),
                format!("duplicate {what} (same as {})", quote(first)),
            ));
        }
        parsed.push(normalised);
    }
    Ok(parsed)
}

/// The zone resolvers, by zone.
type Zones<T> = BTreeMap<String, Vec<T>>;

/// Validates the zone resolvers against the Mesos `domain` and returns them
/// with lower-case zone names, as written and parsed.
fn checked_zone_resolvers(
    zones: &Zones<String>,
    domain: &str,
) -> Result<(Zones<String>, Zones<SocketAddr>), Problem> {
    let domain = domain.to_lowercase();
    let mut checked = BTreeMap::new();
    let mut parsed = BTreeMap::new();
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
        let mut seen: HashMap<SocketAddr, &str> = HashMap::new();
        let mut addrs = Vec::with_capacity(resolvers.len());
        for resolver in resolvers {
            let addr = parse_resolver(resolver).map_err(|reason| {
                Problem::new(
                    key::ZONE_RESOLVERS,
                    quote(resolver),
                    format!("zone {}: {reason}", quote(zone)),
                )
            })?;
            if let Some(first) = seen.insert(addr, resolver) {
                return Err(Problem::new(
                    key::ZONE_RESOLVERS,
                    quote(resolver),
                    format!("zone {}: duplicate resolver (same as {})", quote(zone), quote(first)),
                ));
            }
            addrs.push(addr);
        }
        if name == domain {
            return Err(Problem::new(
                key::ZONE_RESOLVERS,
                quote(zone),
                "a zone resolver may not be given for the Mesos domain",
            ));
        }
        parsed.insert(name.clone(), addrs);
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
    Ok((checked, parsed))
}

/// The key `name` (as `key_name` spells it) if `keys` has it.
fn known_key(
    keys: &[tsig::Key],
    config_key: &str,
    value: &str,
    name: &str,
) -> Result<String, Problem> {
    let name = key_name(name);
    if keys.iter().any(|k| k.name_text() == name) {
        Ok(name)
    } else {
        Err(Problem::new(config_key, quote(value), format!("no key {name:?} in tsigKeys")))
    }
}

/// An entry's address and, after white space, the key it names (or
/// `default`).
fn split_key(
    keys: &[tsig::Key],
    config_key: &str,
    entry: &str,
    default: Option<&String>,
) -> Result<(String, Option<String>), Problem> {
    let mut words = entry.split_whitespace();
    let (what, named) = (words.next().unwrap_or_default(), words.next());
    if words.next().is_some() {
        return Err(Problem::new(
            config_key,
            quote(entry),
            "expected an address and at most a key name",
        ));
    }
    let key = match named {
        Some(name) => Some(known_key(keys, config_key, entry, name)?),
        None => default.cloned(),
    };
    Ok((what.to_owned(), key))
}

/// A TSIG key's name as the keys are known by: lower case, fully qualified.
pub fn key_name(name: &str) -> String {
    fully_qualified(&name.to_ascii_lowercase())
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

fn ip_literal(key: &str, value: &str) -> Result<IpAddr, Problem> {
    match value.parse::<IpAddr>() {
        Ok(ip) => Ok(ip),
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
