//! The operator API's event stream: `SUBSCRIBE` to a master, then read
//! its events one RecordIO record at a time. What the events mean is the
//! state's business (`state::v1`); this only moves bytes.

use std::time::Duration;

use super::{API, FetchError, Fetcher, RecordIo, RecordIoError};

/// The call that opens the stream.
const SUBSCRIBE: &str = r#"{"type":"SUBSCRIBE"}"#;

/// An open event stream from one master.
#[derive(Debug)]
pub struct Subscription {
    resp: reqwest::Response,
    records: RecordIo,
    /// The master streaming, `host:port`.
    pub master: String,
    /// `stateTimeoutSeconds`: how long the first event may take.
    pub first_event_timeout: Duration,
}

/// Why an open stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading the body failed (connection reset, TLS error...).
    #[error("{master}: reading the event stream failed: {cause}")]
    Http {
        /// The master streaming.
        master: String,
        /// The chain of causes.
        cause: String,
    },
    /// The body is not RecordIO, or a record is over the size cap.
    #[error("{master}: {source}")]
    Framing {
        /// The master streaming.
        master: String,
        /// What was wrong.
        source: RecordIoError,
    },
    /// The master closed the stream in the middle of a record.
    #[error("{master}: the event stream ended in the middle of a record ({buffered} bytes of it)")]
    Cut {
        /// The master streaming.
        master: String,
        /// How much of the record had arrived.
        buffered: usize,
    },
}

impl Fetcher {
    /// Subscribe to the event stream of `master` (`host:port`). A master
    /// that is not the leader answers with a redirect
    /// ([`FetchError::Redirect`]); one that cannot stream with a status
    /// (404 before Mesos 1.1, 403 for a principal not allowed to).
    pub async fn subscribe(&self, master: &str) -> Result<Subscription, FetchError> {
        let request = self.request(&self.stream_client, master, API, Some(SUBSCRIBE));
        let resp = self.send(&request).await?;
        Ok(Subscription {
            resp,
            records: RecordIo::new(self.max_bytes),
            master: master.to_owned(),
            first_event_timeout: self.timeout,
        })
    }
}

impl Subscription {
    /// Whether another event has already arrived (it is read without
    /// waiting).
    pub fn has_event(&self) -> bool {
        self.records.has_record()
    }

    /// The next event's bytes; `None` when the master closed the stream
    /// between records. Waits as long as the master does: the caller
    /// times it out.
    pub async fn next_event(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        loop {
            let framing = |source| StreamError::Framing { master: self.master.clone(), source };
            if let Some(record) = self.records.next_record().map_err(framing)? {
                return Ok(Some(record));
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.records.push(&chunk),
                Ok(None) => {
                    let buffered = self.records.buffered();
                    if buffered == 0 {
                        return Ok(None);
                    }
                    return Err(StreamError::Cut { master: self.master.clone(), buffered });
                }
                Err(e) => {
                    let cause = super::tls::chain(&e.without_url());
                    return Err(StreamError::Http { master: self.master.clone(), cause });
                }
            }
        }
    }
}
