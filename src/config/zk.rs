//! The `zk` setting: a `zk://[user:pass@]host:port[,host:port...]/path`
//! URL naming the ZooKeeper ensemble and the znode under which the Mesos
//! masters hold their election. Parsed once, when the config is validated;
//! master detection (`detect`) uses the result.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use crate::addr::{join_host_port, parse_nonzero_port};

use super::REDACTED;

/// The ZooKeeper port assumed when a server in the URL has none.
pub const DEFAULT_ZK_PORT: u16 = 2181;

/// A parsed `zk://[user:pass@]host:port[,host:port...]/path` URL.
///
/// Servers are kept as `host:port` (IPv6 hosts in brackets, port 2181 when
/// the URL gives none). The credentials, when given, are used for ZooKeeper
/// digest authentication; `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// The ensemble, `host:port` each, in URL order.
    pub servers: Vec<String>,
    /// The znode whose children are the masters, e.g. `/mesos`.
    pub path: String,
    credentials: Option<Credentials>,
}

#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    user: String,
    password: String,
}

/// Why a `zk` URL is unusable. `Display` is one line and never contains the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkUrlError {
    /// The URL does not start with `zk://`.
    #[error("not a ZooKeeper URL: it must start with \"zk://\"")]
    Scheme,
    /// Nothing between `zk://` (or the credentials) and the path.
    #[error("no ZooKeeper server given (expected zk://host:port/path)")]
    NoServers,
    /// One server of the list is not `host[:port]`.
    #[error("bad ZooKeeper server {server:?}: {reason}")]
    Server {
        /// The server as written.
        server: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The credentials are not `user:password`.
    #[error("bad credentials: {0}")]
    Credentials(&'static str),
    /// An `@` after the first `/`: credentials with an unescaped `/`.
    #[error("'@' after the first '/': a '/' in the credentials must be written %2F")]
    AtAfterSlash,
    /// No path after the servers.
    #[error("missing path after the servers (expected zk://host:port/path, e.g. /mesos)")]
    NoPath,
    /// The path is not a valid znode path.
    #[error("bad path {path:?}: {reason}")]
    Path {
        /// The path as written.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl ZkUrl {
    /// Parses `zk://[user:pass@]host[:port][,host[:port]...]/path`.
    ///
    /// The scheme is case-insensitive; credentials may be percent-encoded
    /// (`p%40ss` is `p@ss`); a port defaults to 2181; IPv6 hosts must be in
    /// brackets (`[::1]:2181`); one trailing `/` of the path is dropped.
    pub fn parse(url: &str) -> Result<ZkUrl, ZkUrlError> {
        let rest = match url.get(..5) {
            Some(scheme) if scheme.eq_ignore_ascii_case("zk://") => &url[5..],
            _ => return Err(ZkUrlError::Scheme),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains('@') {
            // Most likely a '/' in the password: say so without echoing it.
            return Err(ZkUrlError::AtAfterSlash);
        }
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let credentials = userinfo.map(parse_credentials).transpose()?;
        if hosts.is_empty() {
            return Err(ZkUrlError::NoServers);
        }
        let servers = hosts.split(',').map(parse_server).collect::<Result<Vec<_>, _>>()?;
        let path = parse_path(path)?;
        Ok(ZkUrl { servers, path, credentials })
    }

    /// The user of the digest credentials, if any.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.user.as_str())
    }

    /// Whether the URL carries digest credentials.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The servers as a ZooKeeper connect string, `host:port,host:port`.
    pub fn connect_string(&self) -> String {
        self.servers.join(",")
    }

    /// `user:password` for ZooKeeper digest authentication, if the URL
    /// has credentials.
    pub(crate) fn digest_auth(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| format!("{}:{}", c.user, c.password))
    }

    /// The full znode path of the child `name`.
    pub(crate) fn child(&self, name: &str) -> String {
        if self.path == "/" { format!("/{name}") } else { format!("{}/{name}", self.path) }
    }
}

impl FromStr for ZkUrl {
    type Err = ZkUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ZkUrl::parse(s)
    }
}

/// `zk://user:***@host:port,.../path`: the URL with the password hidden.
impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("zk://")?;
        if let Some(c) = &self.credentials {
            write!(f, "{}:{}@", c.user, REDACTED)?;
        }
        write!(f, "{}{}", self.servers.join(","), self.path)
    }
}

impl fmt::Debug for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkUrl")
            .field("servers", &self.servers)
            .field("path", &self.path)
            .field("user", &self.user())
            .field("password", &self.credentials.as_ref().map(|_| REDACTED))
            .finish()
    }
}

fn parse_credentials(userinfo: &str) -> Result<Credentials, ZkUrlError> {
    let Some((user, password)) = userinfo.split_once(':') else {
        return Err(ZkUrlError::Credentials("expected user:password before '@'"));
    };
    let user = percent_decode(user)
        .ok_or(ZkUrlError::Credentials("invalid percent-escape in the user"))?;
    let password = percent_decode(password)
        .ok_or(ZkUrlError::Credentials("invalid percent-escape in the password"))?;
    if user.is_empty() {
        return Err(ZkUrlError::Credentials("the user is empty"));
    }
    if password.is_empty() {
        return Err(ZkUrlError::Credentials("the password is empty"));
    }
    Ok(Credentials { user, password })
}

/// Decodes `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_server(server: &str) -> Result<String, ZkUrlError> {
    let bad = |reason| ZkUrlError::Server { server: server.to_owned(), reason };
    if server.is_empty() {
        return Err(bad("empty server in the list"));
    }
    let (host, port) = if let Some(bracketed) = server.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(bad("missing ']' after the IPv6 address"));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(bad("expected ':port' after the IPv6 address")),
            },
        };
        (inside, port)
    } else {
        let (host, port) = match server.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (server, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err(bad("an IPv6 address must be in brackets, e.g. [::1]:2181"));
        }
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
            return Err(bad("the host has characters other than letters, digits, '.', '-', '_'"));
        }
        (host, port)
    };
    let port = match port {
        None => DEFAULT_ZK_PORT,
        Some(p) => match parse_nonzero_port(p) {
            Some(n) if p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
    };
    // An IPv6 address (it has a ':') goes back into brackets.
    Ok(join_host_port(host, port))
}

fn parse_path(path: &str) -> Result<String, ZkUrlError> {
    if path.is_empty() {
        return Err(ZkUrlError::NoPath);
    }
    let bad = |reason| ZkUrlError::Path { path: path.to_owned(), reason };
    if path.contains(['?', '#']) {
        return Err(bad("a query or fragment ('?', '#') is not allowed"));
    }
    let trimmed = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    if trimmed == "/" {
        return Ok(trimmed.to_owned());
    }
    for segment in trimmed[1..].split('/') {
        if segment.is_empty() {
            return Err(bad("empty node name ('//')"));
        }
        if segment == "." || segment == ".." {
            return Err(bad("relative node names ('.', '..') are not allowed"));
        }
        if segment.chars().any(invalid_znode_char) {
            return Err(bad("characters ZooKeeper does not allow in paths"));
        }
    }
    Ok(trimmed.to_owned())
}

/// Characters ZooKeeper refuses in node names.
fn invalid_znode_char(c: char) -> bool {
    matches!(u32::from(c), 0x00..=0x1f | 0x7f..=0x9f | 0xd800..=0xf8ff | 0xfff0..=0xffff)
}
