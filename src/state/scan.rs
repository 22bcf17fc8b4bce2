//! Finding a state document's task objects without parsing them.
//!
//! The task objects are most of a state document. The outline (the
//! agents, the leader, each framework's own fields) needs none of their
//! content, only where each one lies, and serde can only learn that by
//! reading every byte of them as JSON. This scanner walks just the
//! document's structure: the root object, its `frameworks` array, each
//! framework object's keys and its `tasks` array, skipping every other
//! value by counting brackets outside strings, 64 bytes at a time
//! ([`nested_end`]). It hands back where each task element lies and a
//! *skeleton*: the document with the contents of those `tasks` arrays cut
//! out (`"tasks":[]`), small enough for serde to read the outline from at
//! once.
//!
//! Nothing goes unchecked: serde reads the skeleton (everything but the
//! task elements) and later each task element on its own, and the
//! scanner checks the punctuation between task elements. Whatever the
//! scanner does not follow — a key written with escapes, a document that
//! does not end where its root object does — makes it give up, and the
//! whole document is read by serde as before.

use std::ops::Range;

/// A state document's task elements, located.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Located {
    /// The document with the contents of every `tasks` array found cut
    /// out.
    pub skeleton: Vec<u8>,
    /// For each object of the root's `frameworks` array, in order, the
    /// range of `spans` holding its tasks.
    pub frameworks: Vec<Range<usize>>,
    /// Where each task element (object or not) lies in the document.
    pub spans: Vec<Range<usize>>,
}

/// Locate the task elements of `doc`; `None` if the scanner cannot
/// follow the document (then it is for serde to read, or to refuse).
pub(super) fn locate(doc: &[u8]) -> Option<Located> {
    let mut scan = Scan { doc, pos: 0, cuts: Vec::new(), located: Located::default() };
    scan.root()?;
    let Scan { cuts, mut located, .. } = scan;
    let cut: usize = cuts.iter().map(|c| c.len()).sum();
    let mut skeleton = Vec::with_capacity(doc.len() - cut);
    let mut from = 0;
    for c in &cuts {
        skeleton.extend_from_slice(doc.get(from..c.start)?);
        from = c.end;
    }
    skeleton.extend_from_slice(doc.get(from..)?);
    located.skeleton = skeleton;
    Some(located)
}

struct Scan<'a> {
    doc: &'a [u8],
    pos: usize,
    /// The contents of each `tasks` array, to cut out of the skeleton.
    cuts: Vec<Range<usize>>,
    located: Located,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.doc.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Step over `byte` (after whitespace).
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// The root object, then nothing but whitespace.
    fn root(&mut self) -> Option<()> {
        self.object(|scan, key| match key {
            b"frameworks" => scan.frameworks(),
            _ => scan.value(),
        })?;
        self.ws();
        (self.pos == self.doc.len()).then_some(())
    }

    /// The `frameworks` value: an array of framework objects (anything
    /// else is skipped, as the outline reads it as empty).
    fn frameworks(&mut self) -> Option<()> {
        self.ws();
        if self.peek()? != b'[' {
            return self.value();
        }
        self.array(|scan| {
            scan.ws();
            if scan.peek()? != b'{' {
                return scan.value();
            }
            let first = scan.located.spans.len();
            scan.object(|scan, key| match key {
                b"tasks" => scan.tasks(),
                _ => scan.value(),
            })?;
            scan.located.frameworks.push(first..scan.located.spans.len());
            Some(())
        })
    }

    /// A framework's `tasks` value: each element's span is kept, and the
    /// array's contents are cut from the skeleton.
    fn tasks(&mut self) -> Option<()> {
        self.ws();
        if self.peek()? != b'[' {
            return self.value();
        }
        let inner = self.pos + 1;
        self.array(|scan| {
            scan.ws();
            let start = scan.pos;
            scan.value()?;
            scan.located.spans.push(start..scan.pos);
            Some(())
        })?;
        // `array` stopped after the closing bracket.
        self.cuts.push(inner..self.pos - 1);
        Some(())
    }

    /// An object (after whitespace), calling `member` with the scanner on
    /// each value and the key it belongs to.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            // A key spelled with escapes may still be one of ours.
            let key = self.doc.get(key.start + 1..key.end - 1)?;
            if key.contains(&b'\\') {
                return None;
            }
            self.eat(b':')?;
            member(self, key)?;
            if self.separator(b'}')? {
                return Some(());
            }
        }
    }

    /// An array (after whitespace), calling `element` on each element.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            element(self)?;
            if self.separator(b']')? {
                return Some(());
            }
        }
    }

    /// After a member or element (and whitespace): a comma, stepped over
    /// (`false`), or `close`, stepped over (`true`: the last one).
    fn separator(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let byte = self.peek()?;
        (byte == b',' || byte == close).then(|| {
            self.pos += 1;
            byte == close
        })
    }

    /// Skip one value (after whitespace), not checking what is inside it.
    fn value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => self.nested(),
            _ => {
                // A number or a literal: up to the next delimiter.
                let rest = self.doc.get(self.pos..)?;
                let len = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                    .unwrap_or(rest.len());
                (len > 0).then(|| self.pos += len)
            }
        }
    }

    /// A string, quotes included (the scanner is on its opening quote).
    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        (self.peek()? == b'"').then_some(())?;
        let mut at = self.pos + 1;
        loop {
            at += memchr::memchr2(b'"', b'\\', self.doc.get(at..)?)?;
            if self.doc.get(at) == Some(&b'"') {
                self.pos = at + 1;
                return Some(start..self.pos);
            }
            // A backslash: the byte after it is escaped.
            at += 2;
        }
    }

    /// An object or array (the scanner is on its opening bracket).
    fn nested(&mut self) -> Option<()> {
        self.pos = nested_end(self.doc, self.pos)?;
        Some(())
    }
}

/// Where the object or array opening at `start` ends (just past its
/// closing bracket), found by counting brackets outside strings; `None`
/// if it does not end.
///
/// The document is read 64 bytes at a time, as four bitmasks (quotes,
/// backslashes, opening and closing brackets: one bit per byte). The
/// bytes inside strings come out of a prefix XOR of the quotes that are
/// not escaped; the brackets outside them are few, and only those are
/// looked at one by one.
fn nested_end(doc: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0u64;
    // Whether the previous block ended inside a string, or on a backslash
    // that escapes this block's first byte.
    let (mut in_string, mut escape) = (false, false);
    let mut base = start;
    while base < doc.len() {
        let rest = doc.get(base..)?;
        let masks = match rest.first_chunk::<64>() {
            Some(block) => Masks::of(block),
            None => {
                // The last bytes, padded with bytes that match nothing.
                let mut block = [0u8; 64];
                block.get_mut(..rest.len())?.copy_from_slice(rest);
                Masks::of(&block)
            }
        };
        let escaped = escaped(masks.backslashes, &mut escape);
        let mut strings = prefix_xor(masks.quotes & !escaped);
        if in_string {
            strings = !strings;
        }
        in_string = strings >> 63 == 1;
        let outside = !(strings | escaped);
        let (opens, closes) = (masks.opens & outside, masks.closes & outside);
        let (open_count, close_count) =
            (u64::from(opens.count_ones()), u64::from(closes.count_ones()));
        if close_count < depth {
            // Depth cannot come back to 0 in this block.
            depth = depth + open_count - close_count;
        } else {
            let mut brackets = opens | closes;
            while brackets != 0 {
                let bit = brackets & brackets.wrapping_neg();
                if opens & bit != 0 {
                    depth += 1;
                } else {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(base + bit.trailing_zeros() as usize + 1);
                    }
                }
                brackets ^= bit;
            }
        }
        base += 64;
    }
    None
}

/// One bit per byte of a 64-byte block, for each kind of byte the
/// bracket count needs.
struct Masks {
    quotes: u64,
    backslashes: u64,
    /// `{` and `[`.
    opens: u64,
    /// `}` and `]`.
    closes: u64,
}

impl Masks {
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; 64]) -> Masks {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut m = Masks { quotes: 0, backslashes: 0, opens: 0, closes: 0 };
        for (i, chunk) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of every x86_64 CPU, and the load reads
            // the 16 bytes of `chunk`, which `chunks_exact` makes exactly
            // 16 long.
            unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
                let bits = |c: u8, v: __m128i| {
                    u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8))) as u16)
                        << (16 * i)
                };
                // `[` and `{`, `]` and `}` differ only in bit 0x20.
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                m.quotes |= bits(b'"', v);
                m.backslashes |= bits(b'\\', v);
                m.opens |= bits(b'{', folded);
                m.closes |= bits(b'}', folded);
            }
        }
        m
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; 64]) -> Masks {
        Masks::bytewise(block)
    }

    /// The same masks, a byte at a time.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn bytewise(block: &[u8; 64]) -> Masks {
        let mut m = Masks { quotes: 0, backslashes: 0, opens: 0, closes: 0 };
        for (i, &b) in block.iter().enumerate() {
            let bit = 1u64 << i;
            match b {
                b'"' => m.quotes |= bit,
                b'\\' => m.backslashes |= bit,
                b'{' | b'[' => m.opens |= bit,
                b'}' | b']' => m.closes |= bit,
                _ => {}
            }
        }
        m
    }
}

/// The bytes escaped by a backslash, given a block's backslashes; `carry`
/// says whether the previous block's last byte escapes this block's first,
/// and is set for the next block.
fn escaped(mut backslashes: u64, carry: &mut bool) -> u64 {
    let mut escaped = 0;
    if std::mem::take(carry) {
        escaped |= 1;
        backslashes &= !1;
    }
    while backslashes != 0 {
        let at = backslashes.trailing_zeros();
        if at == 63 {
            *carry = true;
            break;
        }
        // The next byte is escaped: if it is a backslash, it escapes
        // nothing.
        escaped |= 1 << (at + 1);
        backslashes &= !(0b11 << at);
    }
    escaped
}

/// Bit i set when an odd number of bits 0..=i of `x` are: with `x` the
/// quotes, the bytes from an opening quote up to its closing one.
fn prefix_xor(mut x: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        x ^= x << shift;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(doc: &str, located: &Located) -> Vec<Vec<String>> {
        located
            .frameworks
            .iter()
            .map(|f| located.spans[f.clone()].iter().map(|s| doc[s.clone()].to_string()).collect())
            .collect()
    }

    #[test]
    fn finds_each_frameworks_task_elements_and_cuts_them_out() {
        let doc = r#" {"leader":"m@1:2", "frameworks": [ {"name":"a","tasks":[ {"id":"x","l":[1,{"a":"]"}]} , 7,"s\"]" ]},
            3, {"tasks":{"not":"an array"}}, {"tasks": [], "completed_tasks":[{"id":"y"}]} ], "slaves":[{"id":"s"}] } "#;
        let located = locate(doc.as_bytes()).unwrap();
        assert_eq!(
            texts(doc, &located),
            vec![
                vec![r#"{"id":"x","l":[1,{"a":"]"}]}"#.to_string(), "7".into(), r#""s\"]""#.into()],
                vec![],
                vec![],
            ]
        );
        let skeleton = String::from_utf8(located.skeleton).unwrap();
        assert_eq!(
            skeleton,
            r#" {"leader":"m@1:2", "frameworks": [ {"name":"a","tasks":[]},
            3, {"tasks":{"not":"an array"}}, {"tasks": [], "completed_tasks":[{"id":"y"}]} ], "slaves":[{"id":"s"}] } "#
        );
    }

    #[test]
    fn gives_up_on_what_it_cannot_follow() {
        for doc in [
            "",
            "[]",
            r#"{"frameworks":[]} x"#,
            r#"{"fr\u0061meworks":[]}"#,
            r#"{"frameworks":[{"tasks":[{"a":1} {"b":2}]}]}"#,
            r#"{"frameworks":[{"tasks":[{"a":1},]}]}"#,
            r#"{"frameworks":[{"tasks":[{"a":[1}]}]}"#,
            r#"{"frameworks":[{"tasks":[{"a":"unterminated}]}]}"#,
            r#"{"frameworks":[{"tasks":[{"a":1}"#,
            r#"{"a" 1}"#,
        ] {
            assert_eq!(locate(doc.as_bytes()), None, "{doc}");
        }
    }

    /// [`nested_end`], a byte at a time.
    fn nested_end_bytewise(doc: &[u8], start: usize) -> Option<usize> {
        let (mut depth, mut in_string, mut escape) = (0u32, false, false);
        for (i, &b) in doc.iter().enumerate().skip(start) {
            if std::mem::take(&mut escape) {
                continue;
            }
            match b {
                b'\\' => escape = true,
                b'"' => in_string = !in_string,
                b'{' | b'[' if !in_string => depth += 1,
                b'}' | b']' if !in_string => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    #[test]
    fn brackets_in_strings_and_escapes_across_blocks() {
        let mut doc = String::from("{");
        doc.push_str(&"x".repeat(62));
        // A backslash as a block's last byte escapes the next block's
        // first byte, a quote; then a string with brackets and escapes
        // runs across the next block boundary.
        doc.push_str(r#"\" "]}} \\ \" "#);
        doc.push_str(&"z".repeat(70));
        doc.push_str(r#"" [1,{"a":"}"}] }"#);
        let end = doc.len();
        doc.push_str(" ]");
        assert_eq!(doc.as_bytes()[63], b'\\');
        assert_eq!(nested_end_bytewise(doc.as_bytes(), 0), Some(end));
        assert_eq!(nested_end(doc.as_bytes(), 0), Some(end));
        assert_eq!(nested_end(b"{\"}", 0), None);
    }

    proptest::proptest! {
        #[test]
        fn bitmasks_count_as_bytes_do(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"{}[]\"\\ a".to_vec()), 0..400),
            start in 0usize..8,
        ) {
            let mut doc = bytes;
            let start = start.min(doc.len());
            doc.insert(start, b'{');
            proptest::prop_assert_eq!(nested_end(&doc, start), nested_end_bytewise(&doc, start));
            let block: [u8; 64] = std::array::from_fn(|i| doc.get(i).copied().unwrap_or(0));
            let (simd, bytewise) = (Masks::of(&block), Masks::bytewise(&block));
            proptest::prop_assert_eq!(
                (simd.quotes, simd.backslashes, simd.opens, simd.closes),
                (bytewise.quotes, bytewise.backslashes, bytewise.opens, bytewise.closes)
            );
        }
    }
}
