//! DNS protocol basics (RFC 1035, 2782, 3596, 6891), one table for the
//! whole crate: record type and rcode numbers with their names, the header's
//! layout and flag bits, opcodes, the layout of a stored resource record,
//! wire-name encoding and decoding, and zone serial arithmetic (RFC 1982);
//! TSIG (RFC 8945) in [`tsig`]. The zone compiler, the hot path, the
//! forwarder and the metrics all read the protocol from here, so no module
//! spells a protocol number of its own.
//!
//! Plain `u16`/`u8` constants rather than newtypes: the hot path keeps the
//! numbers as they are on the wire, and the names exist for readers, logs
//! and metrics.

pub mod tsig;

/// Resource record types (the TYPE and QTYPE fields).
pub mod rtype {
    /// An IPv4 address (RFC 1035).
    pub const A: u16 = 1;
    /// An authoritative name server (RFC 1035).
    pub const NS: u16 = 2;
    /// The start of a zone of authority (RFC 1035).
    pub const SOA: u16 = 6;
    /// A domain name pointer, for reverse lookups (RFC 1035).
    pub const PTR: u16 = 12;
    /// Mail exchange (RFC 1035).
    pub const MX: u16 = 15;
    /// Text strings (RFC 1035).
    pub const TXT: u16 = 16;
    /// An IPv6 address (RFC 3596).
    pub const AAAA: u16 = 28;
    /// A service location (RFC 2782).
    pub const SRV: u16 = 33;
    /// The EDNS(0) pseudo-record (RFC 6891).
    pub const OPT: u16 = 41;
    /// A transaction signature (RFC 8945), last in the additional section.
    pub const TSIG: u16 = 250;
    /// An incremental zone transfer (QTYPE only, RFC 1995).
    pub const IXFR: u16 = 251;
    /// A whole zone transfer (QTYPE only, RFC 5936).
    pub const AXFR: u16 = 252;
    /// Every record at a name (QTYPE only, RFC 1035 and RFC 8482).
    pub const ANY: u16 = 255;

    /// The types the query counters tell apart, with their names; any
    /// other type counts as `"other"`.
    pub const NAMED: [(u16, &str); 11] = [
        (A, "A"),
        (AAAA, "AAAA"),
        (SRV, "SRV"),
        (SOA, "SOA"),
        (NS, "NS"),
        (ANY, "ANY"),
        (PTR, "PTR"),
        (MX, "MX"),
        (TXT, "TXT"),
        (AXFR, "AXFR"),
        (IXFR, "IXFR"),
    ];
}

/// Response codes (RFC 1035 §4.1.1; BADVERS is an EDNS extended rcode,
/// RFC 6891 §6.1.3, whose upper bits travel in the OPT record).
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// The query could not be interpreted.
    pub const FORMERR: u8 = 1;
    /// The server could not process the query (or has no records yet).
    pub const SERVFAIL: u8 = 2;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// The kind of query is not supported.
    pub const NOTIMP: u8 = 4;
    /// The server will not answer this query for policy reasons.
    pub const REFUSED: u8 = 5;
    /// The request's signature (TSIG) is missing or does not verify
    /// (RFC 8945 §5.2).
    pub const NOTAUTH: u8 = 9;
    /// Extended rcode 16: an EDNS version we do not speak.
    pub const BADVERS: u16 = 16;

    /// The rcodes the query counters tell apart, with their names; any
    /// other rcode counts as `"other"`.
    pub const NAMED: [(u16, &str); 8] = [
        (NOERROR as u16, "NOERROR"),
        (FORMERR as u16, "FORMERR"),
        (SERVFAIL as u16, "SERVFAIL"),
        (NXDOMAIN as u16, "NXDOMAIN"),
        (NOTIMP as u16, "NOTIMP"),
        (REFUSED as u16, "REFUSED"),
        (NOTAUTH as u16, "NOTAUTH"),
        (BADVERS, "BADVERS"),
    ];
}

/// The Internet class.
pub const CLASS_IN: u16 = 1;
/// Any class (QCLASS, and the class of a TSIG record).
pub const CLASS_ANY: u16 = 255;

/// Opcodes (the header's OPCODE field).
pub mod opcode {
    /// A standard query.
    pub const QUERY: u8 = 0;
    /// A zone changed (RFC 1996).
    pub const NOTIFY: u8 = 4;
}

/// Whether zone serial `a` is newer than `b` (RFC 1982 arithmetic: at
/// most 2^31 - 1 ahead, wrapping).
pub fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The reverse-lookup name of an address (RFC 1035 §3.5, RFC 3596 §2.5):
/// `4.3.2.1.in-addr.arpa.` for 1.2.3.4, 32 nibbles under `ip6.arpa.`.
pub fn reverse_name(ip: std::net::IpAddr) -> String {
    use std::fmt::Write as _;
    let mut name = String::with_capacity(72);
    match ip {
        std::net::IpAddr::V4(v4) => {
            for octet in v4.octets().iter().rev() {
                let _ = write!(name, "{octet}.");
            }
            name.push_str("in-addr.arpa.");
        }
        std::net::IpAddr::V6(v6) => {
            for octet in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", octet & 0xF, octet >> 4);
            }
            name.push_str("ip6.arpa.");
        }
    }
    name
}

/// The reverse-lookup zones (wire form): names under them are PTR
/// questions.
pub const REVERSE_ZONES: [&[u8]; 2] = [b"\x07in-addr\x04arpa\x00", b"\x03ip6\x04arpa\x00"];

/// The longest label, in bytes (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// The longest name in wire form, in bytes (RFC 1035 §2.3.4): 253
/// characters of text, without the final dot.
pub const MAX_WIRE_NAME_LEN: usize = 255;
/// The top bits of a compression pointer (RFC 1035 §4.1.4).
pub const POINTER: u16 = 0xC000;
/// The length of a compression pointer.
pub const POINTER_LEN: usize = 2;
/// Pointers can reach message offsets below this.
pub const POINTER_LIMIT: usize = 0x4000;
/// A compression pointer to the question's name, right after the header.
pub const QUESTION_POINTER: [u8; 2] = (POINTER | header::LEN as u16).to_be_bytes();

/// The message header (RFC 1035 §4.1.1): twelve bytes, id, flags, then
/// the four section counts.
pub mod header {
    /// Length of the header.
    pub const LEN: usize = 12;
    /// Offset of the flags word.
    pub const FLAGS: usize = 2;
    /// Offset of the question count.
    pub const QDCOUNT: usize = 4;
    /// Offset of the first section count (answer); authority and
    /// additional follow, two bytes each.
    pub const ANCOUNT: usize = 6;
    /// The answer section, for [`count_offset`].
    pub const ANSWER: usize = 0;
    /// The authority section, for [`count_offset`].
    pub const AUTHORITY: usize = 1;
    /// The additional section, for [`count_offset`].
    pub const ADDITIONAL: usize = 2;

    // Bits of the flags word.

    /// QR: this message is a response.
    pub const QR: u16 = 0x8000;
    /// The OPCODE field.
    pub const OPCODE_MASK: u16 = 0x7800;
    /// AA: the answer is authoritative.
    pub const AA: u16 = 0x0400;
    /// TC: the message was truncated.
    pub const TC: u16 = 0x0200;
    /// RD: recursion desired.
    pub const RD: u16 = 0x0100;
    /// RA: recursion available.
    pub const RA: u16 = 0x0080;
    /// CD: checking disabled (RFC 4035).
    pub const CD: u16 = 0x0010;
    /// The (low four bits of the) RCODE field.
    pub const RCODE_MASK: u16 = 0x000F;

    /// The OPCODE of a flags word.
    #[inline]
    pub fn opcode(flags: u16) -> u8 {
        ((flags & OPCODE_MASK) >> 11) as u8
    }

    /// The offset of a section's count (`ANSWER`, `AUTHORITY`,
    /// `ADDITIONAL`).
    #[inline]
    pub fn count_offset(section: usize) -> usize {
        ANCOUNT + 2 * section
    }

    /// The flags word of a message, if it has one.
    #[inline]
    pub fn flags(message: &[u8]) -> Option<u16> {
        super::u16_at(message, FLAGS)
    }

    /// Set flag bits in a message's header (nothing if it has none).
    #[inline]
    pub fn set_flags(message: &mut [u8], bits: u16) {
        if let Some(old) = flags(message)
            && let Some(word) = message.get_mut(FLAGS..FLAGS + 2)
        {
            word.copy_from_slice(&(old | bits).to_be_bytes());
        }
    }

    /// The header rcode of a message (the low four bits; the extended
    /// bits live in an OPT record).
    #[inline]
    pub fn rcode(message: &[u8]) -> Option<u8> {
        flags(message).map(|f| (f & RCODE_MASK) as u8)
    }

    /// Whether a message is a response (QR set).
    #[inline]
    pub fn is_response(message: &[u8]) -> bool {
        flags(message).is_some_and(|f| f & QR != 0)
    }
}

/// The layout of a resource record as the zone stores it: its "tail",
/// everything after the owner name (type, class, TTL, RDLENGTH, RDATA).
pub mod rr {
    /// Offset of RDLENGTH in a tail (after type, class and TTL).
    pub const RDLENGTH_OFFSET: usize = 8;
    /// Offset of the RDATA in a tail (after type, class, TTL, RDLENGTH).
    pub const RDATA_OFFSET: usize = 10;
    /// Length of an A tail: the fixed part and 4 bytes of address.
    pub const A_TAIL: usize = RDATA_OFFSET + 4;
    /// Length of an AAAA tail: the fixed part and 16 bytes of address.
    pub const AAAA_TAIL: usize = RDATA_OFFSET + 16;
    /// Offset of the target name in an SRV tail (after priority, weight
    /// and port).
    pub const SRV_TARGET_OFFSET: usize = RDATA_OFFSET + 6;
    /// Length of an OPT record with no options: root owner, type, class
    /// (the UDP size), TTL (extended rcode, version, flags), RDLENGTH.
    pub const OPT_LEN: usize = 1 + RDATA_OFFSET;
}

/// The big-endian `u16` at `at`, if the bytes are there.
#[inline]
pub fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The big-endian `u32` at `at`, if the bytes are there.
pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Where the serial is in an SOA record whose RDATA starts at `rdata`:
/// after MNAME and RNAME (compressed or not).
pub fn soa_serial_offset(p: &[u8], rdata: usize) -> Option<usize> {
    skip_name(p, skip_name(p, rdata)?)
}

/// Skip one (possibly compressed) name starting at `at`: the offset after
/// it, or `None` if it runs off the end or uses a reserved label type.
pub fn skip_name(p: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *p.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2).filter(|&e| e <= p.len()),
            l if l & 0xC0 != 0 => return None,
            l => at += 1 + usize::from(l),
        }
    }
}

/// Skip one resource record starting at `at`: the offset after it.
pub fn skip_rr(p: &[u8], at: usize) -> Option<usize> {
    let end = skip_name(p, at)?;
    let rdlen = usize::from(u16_at(p, end + rr::RDLENGTH_OFFSET)?);
    let next = end + rr::RDATA_OFFSET + rdlen;
    (next <= p.len()).then_some(next)
}

/// Append the lower-case wire form of a dotted name (with or without the
/// final dot) to `out`. `false` (and `out` unchanged) if it cannot be a DNS
/// name.
///
/// The text is copied, lower-cased, behind one extra dot; then, walking
/// back from the end, each dot becomes the length of the label after it.
pub fn push_wire_name(out: &mut Vec<u8>, name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).as_bytes();
    // The wire form is two bytes longer than the text: at most 255.
    if name.len() > 253 {
        return false;
    }
    let start = out.len();
    if !name.is_empty() {
        out.push(b'.');
        out.extend(name.iter().map(u8::to_ascii_lowercase));
        let mut label = 0usize;
        for b in out.get_mut(start..).unwrap_or_default().iter_mut().rev() {
            if *b != b'.' {
                label += 1;
                continue;
            }
            if !(1..=63).contains(&label) {
                out.truncate(start);
                return false;
            }
            *b = label as u8;
            label = 0;
        }
    }
    out.push(0);
    true
}

/// Encode a dotted name (with or without the final dot) as lower-case wire
/// bytes. `None` if it cannot be a DNS name.
pub fn wire_name(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 2);
    push_wire_name(&mut out, name).then_some(out)
}

/// Iterate over the label boundaries of an uncompressed wire name: yields
/// the offset of each label's length byte.
pub fn label_offsets(wire: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let len = usize::from(*wire.get(pos)?);
        if len == 0 {
            return None;
        }
        let here = pos;
        pos += 1 + len;
        Some(here)
    })
}

/// How many labels an uncompressed wire name has.
pub fn label_count(wire: &[u8]) -> usize {
    label_offsets(wire).count()
}

/// An uncompressed wire name as dotted text with the final dot (`"."` for
/// the root); bytes that are not UTF-8 are replaced.
pub fn name_text(wire: &[u8]) -> String {
    let mut out = String::new();
    for at in label_offsets(wire) {
        let len = usize::from(wire.get(at).copied().unwrap_or(0));
        let label = wire.get(at + 1..at + 1 + len).unwrap_or_default();
        out.push_str(&String::from_utf8_lossy(label));
        out.push('.');
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        assert_eq!(wire_name("A.b.").unwrap(), b"\x01a\x01b\x00");
        assert_eq!(wire_name("mesos").unwrap(), b"\x05mesos\x00");
        assert_eq!(wire_name(".").unwrap(), b"\x00");
        assert!(wire_name("a..b").is_none());
        assert!(wire_name(&"a".repeat(64)).is_none());
        assert_eq!(label_count(b"\x01a\x01b\x00"), 2);
    }

    #[test]
    fn wire_names_at_the_limits() {
        let label = "a".repeat(63);
        assert_eq!(wire_name(&format!("{label}.b")).unwrap()[0], 63);
        // 253 characters of text (with four labels of 63): 255 wire bytes.
        let longest = format!("{label}.{label}.{label}.{}", "c".repeat(61));
        assert_eq!(wire_name(&longest).unwrap().len(), 255);
        assert!(wire_name(&format!("{longest}c")).is_none());
        assert!(wire_name(".a").is_none());
        assert!(wire_name("a.").is_some());
        assert_eq!(wire_name("Web.Mesos").unwrap(), b"\x03web\x05mesos\x00");
    }

    #[test]
    fn names_as_text() {
        assert_eq!(name_text(b"\x00"), ".");
        assert_eq!(name_text(b"\x03abc\x03com\x00"), "abc.com.");
    }

    #[test]
    fn header_fields_by_name() {
        let mut m = *b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00";
        assert_eq!(header::flags(&m), Some(header::RD));
        assert!(!header::is_response(&m));
        header::set_flags(&mut m, header::QR | header::TC);
        assert!(header::is_response(&m));
        assert_eq!(header::flags(&m), Some(header::QR | header::TC | header::RD));
        assert_eq!(header::rcode(&m), Some(rcode::NOERROR));
        assert_eq!(header::opcode(0x2800), 5, "UPDATE");
        assert_eq!(header::count_offset(header::ADDITIONAL), 10);
        assert_eq!(header::rcode(&m[..3]), None);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("10.1.2.3".parse().unwrap()), "3.2.1.10.in-addr.arpa.");
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
        let wire = wire_name(&reverse_name("10.1.2.3".parse().unwrap())).unwrap();
        assert!(wire.ends_with(REVERSE_ZONES[0]));
    }

    #[test]
    fn serials_compare_by_rfc_1982_arithmetic() {
        assert!(serial_newer(2, 1) && !serial_newer(1, 2) && !serial_newer(5, 5));
        // Across the wrap: 1 follows u32::MAX.
        assert!(serial_newer(1, u32::MAX) && !serial_newer(u32::MAX, 1));
        assert!(serial_newer((1 << 31) - 1, 0) && !serial_newer(1 << 31, 0));
    }

    #[test]
    fn records_are_skipped_by_their_length() {
        // A root-owned A record: name (1), fixed part (10), 4 bytes.
        let mut p = vec![0u8];
        p.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        assert_eq!(skip_rr(&p, 0), Some(p.len()));
        assert_eq!(skip_rr(&p[..p.len() - 1], 0), None);
        assert_eq!(skip_name(b"\xc0\x0c", 0), Some(2));
        assert_eq!(skip_name(b"\x80", 0), None);
    }
}
