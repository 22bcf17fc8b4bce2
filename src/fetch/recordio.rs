//! RecordIO, the framing of the operator API's event stream: each record
//! is its length in bytes, in decimal, a newline, then that many bytes
//! (one JSON event). The body arrives in chunks that cut records anywhere;
//! [`RecordIo`] puts them back together.

/// The longest length line accepted: 20 digits hold any `u64`.
const MAX_LENGTH_DIGITS: usize = 20;

/// Why a stream is not (or is no longer) RecordIO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// A length line that is not a decimal number (a body of another
    /// format, or garbage); the first bytes of it, escaped.
    #[error("not a RecordIO stream: expected a record length, found {0:?}")]
    BadLength(String),
    /// A record longer than the cap (`stateMaxMegabytes`).
    #[error("record of {length} bytes is larger than the {limit}-byte cap")]
    TooLarge {
        /// The length the record announced.
        length: u64,
        /// The cap.
        limit: usize,
    },
}

/// Reassembles records from the chunks of a RecordIO body.
#[derive(Debug)]
pub struct RecordIo {
    /// Bytes received and not yet handed out as records.
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start.
    start: usize,
    /// The cap on one record's length.
    limit: usize,
}

impl RecordIo {
    /// A decoder refusing records longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        RecordIo { buf: Vec::new(), start: 0, limit }
    }

    /// Add the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole record, if one has arrived. After an error the
    /// stream cannot be read on: the caller drops it.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, RecordIoError> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some(newline) = memchr::memchr(b'\n', pending) else {
            // No full length line yet: refuse early what cannot become one.
            if pending.len() > MAX_LENGTH_DIGITS || !pending.iter().all(u8::is_ascii_digit) {
                return Err(bad_length(pending));
            }
            return Ok(None);
        };
        let digits = pending.get(..newline).unwrap_or_default();
        let length = parse_length(digits).ok_or_else(|| bad_length(digits))?;
        if length > self.limit as u64 {
            return Err(RecordIoError::TooLarge { length, limit: self.limit });
        }
        // `length` is at most `limit`, a usize.
        let length = length as usize;
        let body = newline + 1;
        let Some(record) = pending.get(body..body + length) else {
            return Ok(None);
        };
        let record = record.to_vec();
        self.start += body + length;
        // Keep the buffer from growing with everything ever received.
        if self.start > 1 << 16 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(record))
    }

    /// Whether a whole record has arrived and not been read yet.
    pub fn has_record(&self) -> bool {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some(newline) = memchr::memchr(b'\n', pending) else { return false };
        let length = pending.get(..newline).and_then(parse_length);
        length.is_some_and(|l| (pending.len() - newline - 1) as u64 >= l)
    }

    /// Bytes received that are not yet part of a whole record.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > MAX_LENGTH_DIGITS {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then_some(())?;
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn bad_length(bytes: &[u8]) -> RecordIoError {
    let shown = bytes.get(..bytes.len().min(32)).unwrap_or_default();
    RecordIoError::BadLength(String::from_utf8_lossy(shown).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(records: &[&str]) -> Vec<u8> {
        records.iter().flat_map(|r| format!("{}\n{r}", r.len()).into_bytes()).collect()
    }

    #[test]
    fn records_come_back_whole_however_the_chunks_cut_them() {
        let records = ["{\"type\":\"SUBSCRIBED\"}", "", "{\"type\":\"HEARTBEAT\"}", "é"];
        let body = frame(&records);
        for size in 1..=body.len() {
            let mut io = RecordIo::new(1024);
            let mut out = Vec::new();
            for chunk in body.chunks(size) {
                io.push(chunk);
                while let Some(r) = io.next_record().unwrap() {
                    out.push(String::from_utf8(r).unwrap());
                }
            }
            assert_eq!(out, records, "chunks of {size}");
            assert_eq!(io.buffered(), 0);
        }
    }

    #[test]
    fn garbage_and_oversized_records_are_errors() {
        let mut io = RecordIo::new(10);
        io.push(b"{\"leader\":");
        assert!(matches!(io.next_record(), Err(RecordIoError::BadLength(s)) if s.starts_with('{')));

        let mut io = RecordIo::new(10);
        io.push(b"11\n");
        assert_eq!(io.next_record(), Err(RecordIoError::TooLarge { length: 11, limit: 10 }));

        for bad in [&b"\n"[..], b"-1\n", b"1 \n", b"99999999999999999999999\n", b"0x1\n"] {
            let mut io = RecordIo::new(10);
            io.push(bad);
            assert!(io.next_record().is_err(), "{bad:?}");
        }
        // A length still arriving is not an error.
        let mut io = RecordIo::new(10);
        io.push(b"1");
        assert_eq!(io.next_record(), Ok(None));
        io.push(b"0\n0123456789");
        assert_eq!(io.next_record().unwrap().unwrap(), b"0123456789");
    }

    #[test]
    fn a_long_stream_does_not_keep_what_was_read() {
        let mut io = RecordIo::new(1 << 20);
        let record = "x".repeat(1000);
        for _ in 0..1000 {
            io.push(&frame(&[&record]));
            assert_eq!(io.next_record().unwrap().map(|r| r.len()), Some(1000));
        }
        assert!(io.buf.capacity() < 1 << 18, "{}", io.buf.capacity());
    }
}
