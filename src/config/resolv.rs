//! The fallback for `resolvers`: the `nameserver` entries of
//! `/etc/resolv.conf`, without this host's own addresses.

use std::net::IpAddr;
use std::path::Path;

use super::{Problem, key, quote};

/// The file consulted for upstream resolvers when `resolvers` is empty.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

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
pub(super) fn local_nameservers(resolv_conf: &Path) -> Result<Vec<String>, Problem> {
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
