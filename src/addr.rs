//! Addresses as text: splitting `host:port`, reading a port, reading a
//! libprocess UPID (`id@host:port`), joining a host and a port, and hiding
//! the password of a URL. One function per job, used by the config, master
//! detection, the state fetch and record generation.
//!
//! Where callers need different rules, the difference is in the name:
//! [`split_host_port`] is Go's `net.SplitHostPort` with its error reasons
//! (the config's `masters` and `resolvers`), [`split_host_port_loose`] the
//! same shapes without its checks for stray brackets (UPIDs in a state),
//! [`split_host_port_lenient`] the original's `urls.SplitHostPort`;
//! [`parse_port`] takes 0 to 65535, [`parse_nonzero_port`] 1 to 65535.
//!
//! A leaf: nothing here depends on the rest of the crate.

/// Splits `host:port` as Go's `net.SplitHostPort` does (IPv6 in brackets),
/// with Go's reason when it cannot: `missing port`, `too many colons`,
/// `missing ']'`, `unexpected '['`, `unexpected ']'`.
pub fn split_host_port(s: &str) -> Result<(&str, &str), &'static str> {
    let Some(colon) = s.rfind(':') else {
        return Err("missing port");
    };
    let (host, no_open_from, no_close_from) = if s.starts_with('[') {
        let Some(end) = s.find(']') else {
            return Err("missing ']'");
        };
        if end + 1 == s.len() {
            return Err("missing port");
        }
        if end + 1 != colon {
            return Err(if s[end + 1..].starts_with(':') {
                "too many colons"
            } else {
                "missing port"
            });
        }
        (&s[1..end], 1, end + 1)
    } else {
        let host = &s[..colon];
        if host.contains(':') {
            return Err("too many colons");
        }
        (host, 0, 0)
    };
    if s[no_open_from..].contains('[') {
        return Err("unexpected '['");
    }
    if s[no_close_from..].contains(']') {
        return Err("unexpected ']'");
    }
    Ok((host, &s[colon + 1..]))
}

/// `host:port` or `[v6]:port`, as [`split_host_port`] reads them but
/// without refusing stray brackets or colons in the part after `]`: every
/// address Go accepts splits the same; some it refuses (`a[b:1`,
/// `[::1]:5:3`) split here too.
pub fn split_host_port_loose(addr: &str) -> Option<(&str, &str)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        Some((host, port))
    } else {
        let (host, port) = addr.rsplit_once(':')?;
        (!host.contains(':')).then_some((host, port))
    }
}

/// The original's `urls.SplitHostPort`: [`split_host_port_loose`], else a
/// split at the first `:`.
pub fn split_host_port_lenient(addr: &str) -> Option<(&str, &str)> {
    split_host_port_loose(addr).or_else(|| addr.split_once(':'))
}

/// A port as Go reads one (`strconv.Atoi`, then the range): a decimal
/// integer from 0 to 65535, with an optional `+` and leading zeros.
pub fn parse_port(s: &str) -> Option<u16> {
    s.parse::<i64>().ok().and_then(|p| u16::try_from(p).ok())
}

/// [`parse_port`] without port 0: a port that can be connected to.
pub fn parse_nonzero_port(s: &str) -> Option<u16> {
    parse_port(s).filter(|&p| p != 0)
}

/// `host:port`, the host in brackets when it has a `:` (an IPv6 address),
/// as Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// A libprocess UPID, `id@host:port`. Lenient where the meaning is clear:
/// a UPID without a port still names its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upid<'a> {
    /// The host, without the brackets of an IPv6 address.
    pub host: &'a str,
    /// The port as written; `None` when the UPID has none.
    pub port: Option<&'a str>,
    /// Everything after the `@`.
    pub addr: &'a str,
}

impl<'a> Upid<'a> {
    /// `None` without an `@`, with a second `@`, or with nothing after it.
    pub fn parse(pid: &'a str) -> Option<Self> {
        let (_, addr) = pid.split_once('@')?;
        if addr.contains('@') || addr.is_empty() {
            return None;
        }
        Some(match split_host_port_loose(addr) {
            Some((host, port)) => Upid { host, port: Some(port), addr },
            None => {
                let host = addr.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(addr);
                Upid { host, port: None, addr }
            }
        })
    }
}

/// The `host:port` of a UPID such as `master@10.0.0.1:5050` (IPv6 in
/// brackets); `None` without an `@` or a port. Unlike [`Upid::parse`], a
/// second `@` is not refused: it stays in the host.
pub fn upid_address(upid: &str) -> Option<String> {
    let (_, addr) = upid.split_once('@')?;
    let (host, port) = split_host_port_loose(addr)?;
    Some(join_host_port(host, port))
}

/// The text of a URL with whatever stands between the first `:` of the
/// user information and the last `@` replaced by `placeholder`:
/// `zk://user:pw@host/path` → `zk://user:***@host/path`. The user
/// information starts after the scheme's `://`, or at the very start when
/// the text has none. Made for text that may not even parse as a URL, so it
/// errs on the side of hiding.
pub fn redact_url_password(url: &str, placeholder: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    let userinfo_start = url[..at].find("://").map_or(0, |i| i + 3);
    match url[userinfo_start..at].find(':') {
        Some(colon) => {
            let colon = userinfo_start + colon;
            format!("{}:{placeholder}{}", &url[..colon], &url[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_host_port_follows_go() {
        assert_eq!(split_host_port("a:1"), Ok(("a", "1")));
        assert_eq!(split_host_port("[::1]:53"), Ok(("::1", "53")));
        assert_eq!(split_host_port(":53"), Ok(("", "53")));
        assert_eq!(split_host_port("a"), Err("missing port"));
        assert_eq!(split_host_port("[::1]"), Err("missing port"));
        assert_eq!(split_host_port("::1:53"), Err("too many colons"));
        assert_eq!(split_host_port("[::1]:5:3"), Err("too many colons"));
        assert_eq!(split_host_port("[::1:53"), Err("missing ']'"));
        assert_eq!(split_host_port("a[b:53"), Err("unexpected '['"));
        assert_eq!(split_host_port("a]b:53"), Err("unexpected ']'"));
        assert_eq!(split_host_port("[a]x:53"), Err("missing port"));
    }

    #[test]
    fn loose_and_lenient_splits() {
        assert_eq!(split_host_port_loose("a:1"), Some(("a", "1")));
        assert_eq!(split_host_port_loose("[::1]:53"), Some(("::1", "53")));
        assert_eq!(split_host_port_loose("a:"), Some(("a", "")));
        assert_eq!(split_host_port_loose("a"), None);
        assert_eq!(split_host_port_loose("::1:53"), None);
        assert_eq!(split_host_port_loose("[::1]"), None);
        assert_eq!(split_host_port_loose("[::1:53"), None);
        // Where Go refuses and the loose split does not.
        assert_eq!(split_host_port_loose("[::1]:5:3"), Some(("::1", "5:3")));
        assert_eq!(split_host_port_loose("a[b:53"), Some(("a[b", "53")));
        assert_eq!(split_host_port_lenient("::1:53"), Some(("", ":1:53")));
        assert_eq!(split_host_port_lenient("a:1"), Some(("a", "1")));
        assert_eq!(split_host_port_lenient("a"), None);
    }

    #[test]
    fn every_address_go_splits_splits_the_same_loosely() {
        for s in ["a:1", "[::1]:53", ":53", "[]:1", "a:", "1.2.3.4:5", "[fe80::1%eth0]:53"] {
            assert_eq!(split_host_port(s).ok(), split_host_port_loose(s), "{s}");
        }
    }

    #[test]
    fn ports() {
        for (s, port) in [("53", Some(53)), ("+53", Some(53)), ("053", Some(53)), ("0", Some(0))] {
            assert_eq!(parse_port(s), port, "{s}");
        }
        assert_eq!(parse_nonzero_port("53"), Some(53));
        assert_eq!(parse_nonzero_port("+53"), Some(53));
        assert_eq!(parse_nonzero_port("053"), Some(53));
        assert_eq!(parse_nonzero_port("65535"), Some(65535));
        for bad in ["-1", "65536", "", "abc", "99999999999999999999999", " 53"] {
            assert_eq!(parse_port(bad), None, "{bad}");
            assert_eq!(parse_nonzero_port(bad), None, "{bad}");
        }
        assert_eq!(parse_nonzero_port("0"), None);
    }

    #[test]
    fn joins() {
        assert_eq!(join_host_port("10.0.0.1", 5050), "10.0.0.1:5050");
        assert_eq!(join_host_port("::1", "53"), "[::1]:53");
        assert_eq!(join_host_port("m.example", 1), "m.example:1");
    }

    #[test]
    fn upids() {
        let p = |s| Upid::parse(s).map(|u| (u.host, u.port));
        assert_eq!(p("slave(1)@10.0.0.1:5051"), Some(("10.0.0.1", Some("5051"))));
        assert_eq!(p("s@[::1]:5051"), Some(("::1", Some("5051"))));
        assert_eq!(p("s@10.0.0.1"), Some(("10.0.0.1", None)));
        assert_eq!(p("s@[::1]"), Some(("::1", None)));
        assert_eq!(p("10.0.0.1:5051"), None);
        assert_eq!(p("a@b@c:1"), None);
        assert_eq!(p("s@"), None);
        assert_eq!(Upid::parse("s@h:1").map(|u| u.addr), Some("h:1"));
    }

    #[test]
    fn upid_addresses() {
        assert_eq!(upid_address("master@10.0.0.1:5050").as_deref(), Some("10.0.0.1:5050"));
        assert_eq!(upid_address("master@[::1]:5050").as_deref(), Some("[::1]:5050"));
        assert_eq!(upid_address("10.0.0.1:5050"), None);
        assert_eq!(upid_address("master@10.0.0.1"), None);
        assert_eq!(upid_address("m@b@c:1").as_deref(), Some("b@c:1"));
    }

    #[test]
    fn url_passwords_are_redacted() {
        let r = |url| redact_url_password(url, "***");
        assert_eq!(r("zk://user:pw@h1:2181,h2:2181/mesos"), "zk://user:***@h1:2181,h2:2181/mesos");
        assert_eq!(r("zk://u:pw@h:1/mesos"), "zk://u:***@h:1/mesos");
        assert_eq!(r("zk://u:p@w@h:1/mesos"), "zk://u:***@h:1/mesos");
        assert_eq!(r("ZK://u:pw@h/mesos/"), "ZK://u:***@h/mesos/");
        assert_eq!(r("zk//u:pw@h/x"), "zk//u:***@h/x");
        assert_eq!(r("zk://u:p/w@h:1/mesos"), "zk://u:***@h:1/mesos");
        assert_eq!(r("u:pw@h:1/mesos"), "u:***@h:1/mesos");
        for unchanged in ["zk://h1:2181/mesos", "zk://user@h1/mesos", "zk://h/a@b:c", ""] {
            assert_eq!(r(unchanged), unchanged);
        }
    }
}
