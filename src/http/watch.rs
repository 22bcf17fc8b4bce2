//! Blocking queries on the lookups (`/v1/hosts/{host}`, `…/ports`,
//! `/v1/services/{service}`): every answer carries `X-Mesos-DNS-Index`, the
//! index since which that answer has been what it is; with `?index=N` the
//! request is held until the answer differs from the one at `N`, or until
//! `wait` passes. A held request is a future waiting on its name's signal
//! ([`Published::watch`](crate::snapshot::Published::watch)): no thread,
//! and no work while other names change.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{Api, error};
use crate::snapshot::Snapshot;

/// The header that carries an answer's index.
pub const INDEX_HEADER: &str = "x-mesos-dns-index";
/// How long a blocking query waits without `wait`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// The longest `wait`.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// Lookups whose answers are remembered; beyond, all are forgotten (their
/// next blocking queries answer at once, then wait as usual).
const MAX_REMEMBERED: usize = 200_000;

/// A lookup's blocking parameters, from its query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    /// The index of the answer the client has.
    pub index: Option<u64>,
    /// How long to hold the request at most.
    pub wait: Duration,
}

impl Blocking {
    /// `index=N&wait=30s` (either may be absent; other parameters are
    /// ignored, as the original ignores them).
    pub fn parse(query: Option<&str>) -> Result<Blocking, String> {
        let mut b = Blocking { index: None, wait: DEFAULT_WAIT };
        for pair in query.unwrap_or_default().split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "index" => {
                    let n = value.parse().map_err(|_| format!("index={value:?}: not a number"))?;
                    b.index = Some(n);
                }
                "wait" => {
                    let wait = parse_duration(value).ok_or_else(|| {
                        format!("wait={value:?}: not a duration such as 30s, 5m or 500ms")
                    })?;
                    b.wait = wait.min(MAX_WAIT);
                }
                _ => {}
            }
        }
        Ok(b)
    }
}

/// A duration as blocking queries (and `mesos-dns watch --wait`) write
/// it: `30s`, `5m`, `500ms`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// For each lookup answered, a fingerprint of its answer and the index
/// since which it has been that answer.
#[derive(Debug, Default)]
pub struct Answers {
    seen: Mutex<HashMap<String, (u64, u64)>>,
    hasher: foldhash::fast::FixedState,
}

impl Answers {
    /// The index since which `lookup`'s answer has been the one
    /// fingerprinted `print`, seen at index `now`.
    fn since(&self, lookup: &str, print: u64, now: u64) -> u64 {
        let Ok(mut seen) = self.seen.lock() else { return now };
        if seen.len() >= MAX_REMEMBERED && !seen.contains_key(lookup) {
            seen.clear();
        }
        match seen.get_mut(lookup) {
            Some((p, since)) if *p == print => *since,
            Some(entry) => {
                *entry = (print, now);
                now
            }
            None => {
                seen.insert(lookup.to_owned(), (print, now));
                now
            }
        }
    }

    /// A lookup's records as JSON (with none, the original's shape: one
    /// record of empty strings; scripts rely on it), and their
    /// fingerprint: each record hashed as written, summed, so the same for
    /// any order of the same records (a full compile may order a name's
    /// records differently from the version before it).
    fn json<T: Serialize + Default>(&self, records: &[T]) -> (Vec<u8>, u64) {
        let empty = [T::default()];
        let items = if records.is_empty() { &empty[..] } else { records };
        let mut json = Vec::with_capacity(96 * items.len() + 2);
        let mut print = records.len() as u64;
        json.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            let start = json.len();
            let _ = serde_json::to_writer(&mut json, item);
            print = print.wrapping_add(self.hasher.hash_one(json.get(start..).unwrap_or_default()));
        }
        json.push(b']');
        (json, print)
    }
}

/// Answer the lookup `lookup` (its path, which names its answer) of the
/// records at `name`: `answer` makes it from a snapshot. With an `index`
/// in `query`, hold the request until the answer differs from the one at
/// that index (an index from the future or from an earlier run answers at
/// once), or until `wait` passes.
pub(super) async fn lookup<T: Serialize + Default>(
    api: &Api,
    lookup: &str,
    name: &str,
    query: Option<&str>,
    answer: impl Fn(Option<&Snapshot>) -> Vec<T>,
) -> Response {
    let blocking = match Blocking::parse(query) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let published = &api.current;
    let Some(known) = blocking.index else {
        let snapshot = published.load_full();
        let (json, print) = api.answers.json(&answer(snapshot.as_deref()));
        let now = snapshot.map_or(published.base(), |s| s.index);
        return respond(json, api.answers.since(lookup, print, now));
    };
    let deadline = tokio::time::Instant::now() + blocking.wait;
    let watch = published.watch(name);
    loop {
        // Listening before reading: a swap in between wakes it.
        let changed = watch.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let snapshot = published.load_full();
        let (json, print) = api.answers.json(&answer(snapshot.as_deref()));
        let now = snapshot.map_or(published.base(), |s| s.index);
        let since = api.answers.since(lookup, print, now);
        if known < published.base() || known > now || since > known {
            return respond(json, since);
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep_until(deadline) => return respond(json, since),
        }
    }
}

/// A lookup's JSON with its index.
fn respond(json: Vec<u8>, index: u64) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (HeaderName::from_static(INDEX_HEADER), HeaderValue::from(index)),
    ];
    (headers, json).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_parameters_read_as_consul_writes_them() {
        let b = Blocking::parse(Some("index=42&wait=30s")).unwrap();
        assert_eq!(b, Blocking { index: Some(42), wait: Duration::from_secs(30) });
        assert_eq!(Blocking::parse(None).unwrap(), Blocking { index: None, wait: DEFAULT_WAIT });
        let wait = |w: &str| Blocking::parse(Some(&format!("wait={w}"))).map(|b| b.wait);
        assert_eq!(wait("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(wait("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(wait("7"), Ok(Duration::from_secs(7)));
        assert_eq!(wait("1h"), Ok(MAX_WAIT));
        assert!(wait("soon").is_err());
        assert!(wait("5d").is_err());
        assert!(Blocking::parse(Some("index=-1")).is_err());
        assert_eq!(Blocking::parse(Some("other=1&index=3")).unwrap().index, Some(3));
    }

    #[test]
    fn an_answer_keeps_its_index_until_it_differs() {
        let answers = Answers::default();
        let print = |records: &[&str]| {
            let records: Vec<String> = records.iter().map(|r| (*r).to_owned()).collect();
            answers.json(&records).1
        };
        let (xy, yx, x) = (print(&["x", "y"]), print(&["y", "x"]), print(&["x"]));
        assert_eq!(answers.since("a", xy, 10), 10);
        assert_eq!(answers.since("a", yx, 11), 10, "the same records in another order");
        assert_eq!(answers.since("a", x, 12), 12);
        assert_eq!(answers.since("b", x, 13), 13);
        assert_eq!(answers.since("a", x, 14), 12);
        assert_ne!(print(&[]), print(&[""]), "nothing is not one empty record");
    }

    #[test]
    fn the_json_is_what_serde_writes_and_nothing_keeps_the_original_shape() {
        #[derive(Serialize, Default)]
        struct R {
            host: String,
            ip: String,
        }
        let answers = Answers::default();
        let two =
            [R { host: "a.".into(), ip: "1".into() }, R { host: "b.".into(), ip: "2".into() }];
        assert_eq!(answers.json(&two).0, serde_json::to_vec(&two).unwrap());
        assert_eq!(answers.json::<R>(&[]).0, br#"[{"host":"","ip":""}]"#);
    }
}
