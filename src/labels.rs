//! DNS label rules (docs/naming.md, labels): how task, framework and port names are
//! mangled into valid labels (`spec(x)`) and dotted fragments (`frag(x)`),
//! plus the checks that keep impossible names out of the record set.

/// The label rule in force: RFC 1123 by default, RFC 952 with
/// `enforceRFC952`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelRule {
    /// Up to 63 characters; leading and trailing `-` trimmed.
    Rfc1123,
    /// Up to 24 characters; leading digits and `-`, trailing `-` trimmed.
    Rfc952,
}

impl LabelRule {
    /// The rule selected by the `enforceRFC952` config key.
    pub fn from_enforce_rfc952(enforce: bool) -> Self {
        if enforce { Self::Rfc952 } else { Self::Rfc1123 }
    }

    /// `spec(x)`: mangle `name` into one label. Upper case is lowered, `.`,
    /// `_` and `-` become `-`, every other character is dropped; then the
    /// result is trimmed and cut as the original does (a cut that ends in
    /// `-` is refilled from the characters after the cut).
    pub fn label(self, name: &str) -> String {
        let mut mapped: Vec<u8> = Vec::with_capacity(name.len());
        if name.is_ascii() {
            mapped.extend(name.bytes().filter_map(|b| map_char(char::from(b))));
        } else {
            mapped.extend(name.chars().filter_map(map_char));
        }
        let (max_len, trim_left): (usize, fn(u8) -> bool) = match self {
            Self::Rfc1123 => (63, |b| b == b'-'),
            Self::Rfc952 => (24, |b| b == b'-' || b.is_ascii_digit()),
        };
        let start = mapped.iter().position(|&b| !trim_left(b)).unwrap_or(mapped.len());
        let trimmed = &mapped[start..];
        let size = trimmed.len().min(max_len);
        let (cut, rest) = trimmed.split_at(size);
        let mut head: Vec<u8> = trim_dashes_right(cut).to_vec();
        if head.len() < size {
            let tail = trim_dashes_left(rest);
            let take = tail.len().min(size - head.len());
            head.extend_from_slice(&tail[..take]);
        }
        // Every byte is ASCII by construction of `map_char`.
        String::from_utf8(head).unwrap_or_default()
    }

    /// `frag(x)`: apply the label rule to every `.`-separated part of `name`
    /// and join the non-empty results with `.` (framework names keep their
    /// dots).
    pub fn fragment(self, name: &str) -> String {
        let mut out = String::with_capacity(name.len());
        for part in name.split('.') {
            let label = self.label(part);
            if !label.is_empty() {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&label);
            }
        }
        out
    }
}

fn map_char(c: char) -> Option<u8> {
    match c {
        'A'..='Z' => Some(c.to_ascii_lowercase() as u8),
        'a'..='z' | '0'..='9' => Some(c as u8),
        '-' | '.' | '_' => Some(b'-'),
        _ => None,
    }
}

fn trim_dashes_right(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b'-').map_or(0, |i| i + 1);
    &b[..end]
}

fn trim_dashes_left(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b'-').unwrap_or(b.len());
    &b[start..]
}

pub use crate::proto::MAX_LABEL_LEN;
/// The longest name DNS allows, in presentation form without the final dot.
pub const MAX_NAME_LEN: usize = 253;

/// Whether a fully qualified name (with or without its final dot) can exist
/// in DNS: no empty label, no label over 63 bytes, at most 253 bytes.
pub fn is_valid_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty() && name.len() <= MAX_NAME_LEN && labels_fit(name.as_bytes())
}

/// Whether every `.`-separated label is 1 to 63 bytes (a byte loop: this
/// runs for every name a refresh interns).
fn labels_fit(name: &[u8]) -> bool {
    let mut len = 0usize;
    for &b in name {
        if b == b'.' {
            if len == 0 {
                return false;
            }
            len = 0;
        } else {
            len += 1;
            if len > MAX_LABEL_LEN {
                return false;
            }
        }
    }
    len > 0
}

/// Whether a raw (unmangled) DiscoveryInfo name may be published as-is
/// (lower-cased): only letters, digits, `-`, `_` and `.`, with no empty
/// label and no label over 63 characters (docs/naming.md, labels).
pub fn is_publishable_raw_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.split('.').all(|l| !l.is_empty() && l.len() <= MAX_LABEL_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1123_examples() {
        let r = LabelRule::Rfc1123;
        assert_eq!(r.label("Nginx"), "nginx");
        assert_eq!(r.label("my_app.v2"), "my-app-v2");
        assert_eq!(r.label("--lead"), "lead");
        assert_eq!(r.label("trail--"), "trail");
        assert_eq!(r.label("a b!c"), "abc");
        assert_eq!(r.label("日本-x"), "x");
        assert_eq!(r.label(""), "");
        assert_eq!(r.label("123abc"), "123abc");
        assert_eq!(r.label(&"a".repeat(70)), "a".repeat(63));
    }

    #[test]
    fn cut_ending_in_dash_is_refilled_from_after_the_cut() {
        // 62 x's, then "--", then "yz": the cut at 63 ends in "-", which is
        // dropped and refilled with the next non-dash characters.
        let name = format!("{}--yz", "x".repeat(62));
        assert_eq!(LabelRule::Rfc1123.label(&name), format!("{}y", "x".repeat(62)));
    }

    #[test]
    fn rfc952_trims_leading_digits_and_cuts_at_24() {
        let r = LabelRule::Rfc952;
        assert_eq!(r.label("123-abc"), "abc");
        assert_eq!(r.label(&"b".repeat(30)), "b".repeat(24));
        assert_eq!(r.label("0-9"), "");
    }

    #[test]
    fn fragment_keeps_dots_and_drops_empty_parts() {
        let r = LabelRule::Rfc1123;
        assert_eq!(r.fragment("Marathon.User"), "marathon.user");
        assert_eq!(r.fragment("a..b"), "a.b");
        assert_eq!(r.fragment("..."), "");
        assert_eq!(
            r.fragment("chronos with a space AND MIXED CASE-2.0.1"),
            "chronoswithaspaceandmixedcase-2.0.1"
        );
    }

    #[test]
    fn dns_name_validity() {
        assert!(is_valid_dns_name("a.b.mesos."));
        assert!(!is_valid_dns_name("a..mesos."));
        assert!(!is_valid_dns_name(&format!("{}.mesos.", "a".repeat(64))));
        assert!(!is_valid_dns_name(&format!("{}mesos.", "abcdefghi.".repeat(25))));
        assert!(!is_valid_dns_name("."));
    }

    #[test]
    fn raw_names() {
        assert!(is_publishable_raw_name("Big.Dog"));
        assert!(is_publishable_raw_name("my_app"));
        assert!(!is_publishable_raw_name("with space"));
        assert!(!is_publishable_raw_name("a..b"));
        assert!(!is_publishable_raw_name(""));
    }
}
