//! Streamed documents: `/v1/axfr` and `/v1/enumerate` written on a
//! blocking thread and sent in pieces as they are made, so a download never
//! holds the whole document in memory nor an async thread for its length.

use std::io;
use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{REQUEST_TIMEOUT, with_snapshot};
use crate::records::RecordSet;
use crate::snapshot::Snapshot;

/// Bytes of JSON per piece of a streamed body.
const CHUNK: usize = 64 * 1024;
/// Pieces written ahead of the client.
const CHUNKS_AHEAD: usize = 2;

/// A document of the records in `snapshot` ([`with_snapshot`]: none
/// before the first load), written by `write` on a blocking thread and
/// streamed as it is made, in pieces of [`CHUNK`] bytes. `/v1/enumerate`
/// of a 20,000-task cluster is 26 MB and takes ~150 ms of CPU to write:
/// made whole, it took the resident set from 31 to 92 MB and held one of
/// the async threads, which DNS over TCP and forwarding share, for all
/// that time. Streamed, a download holds a few pieces, and the snapshot it
/// started with (a reload meanwhile keeps the old records until it ends).
/// A client that takes no piece for [`REQUEST_TIMEOUT`] is cut off; a body
/// cut short ends with an error, never as if complete: it is complete only
/// when the writer's end marker ([`Piece::End`]) arrives.
pub(super) fn stream_json<F>(snapshot: Option<Arc<Snapshot>>, write: F) -> Response
where
    F: FnOnce(&mut ChunkWriter, &RecordSet, Option<&Snapshot>) -> serde_json::Result<()>
        + Send
        + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter { buf: Vec::with_capacity(CHUNK), tx, runtime };
        let written = with_snapshot(snapshot.as_deref(), |rs, snap| write(&mut out, rs, snap))
            .map_err(io::Error::from);
        if let Err(e) = written.and_then(|()| out.finish()) {
            // The writer goes without its end marker: the body ends in an
            // error (if the client is still there to see it).
            tracing::debug!("HTTP body cut short: {e}");
        }
    });
    let body = Chunks { rx, ended: false };
    ([(header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(body))
        .into_response()
}

/// What a streamed body's writer hands on.
enum Piece {
    Bytes(Bytes),
    /// The document is complete.
    End,
}

/// Collects a streamed body's bytes and hands them on a piece at a time.
pub(super) struct ChunkWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Piece>,
    runtime: tokio::runtime::Handle,
}

impl ChunkWriter {
    /// Hand over what is collected, waiting for the client to take it.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.hand_on(Piece::Bytes(bytes))
    }

    /// Hand over the rest and the end marker.
    fn finish(mut self) -> io::Result<()> {
        self.send()?;
        self.hand_on(Piece::End)
    }

    fn hand_on(&self, piece: Piece) -> io::Result<()> {
        let sent =
            self.runtime.block_on(tokio::time::timeout(REQUEST_TIMEOUT, self.tx.send(piece)));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")),
        }
    }
}

impl io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The pieces of a streamed body, as they come; an error if the writer
/// goes without its end marker.
struct Chunks {
    rx: tokio::sync::mpsc::Receiver<Piece>,
    ended: bool,
}

impl futures_core::Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.ended {
            return std::task::Poll::Ready(None);
        }
        self.rx.poll_recv(cx).map(|piece| match piece {
            Some(Piece::Bytes(bytes)) => Some(Ok(bytes)),
            Some(Piece::End) => {
                self.ended = true;
                None
            }
            None => {
                self.ended = true;
                let cut =
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the document was cut short");
                Some(Err(cut))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// Writes `len` bytes of one JSON string, then fails if `fail`, and
    /// reports how its writes ended (the error's kind, if any).
    fn writer(
        len: usize,
        fail: bool,
        done: std::sync::mpsc::Sender<Option<io::ErrorKind>>,
    ) -> impl FnOnce(&mut ChunkWriter, &RecordSet, Option<&Snapshot>) -> serde_json::Result<()>
    {
        move |out, _, _| {
            let written = out
                .write_all(b"\"")
                .and_then(|()| (2..len).try_for_each(|_| out.write_all(b"x")))
                .and_then(|()| out.write_all(b"\""));
            let _ = done.send(written.as_ref().err().map(io::Error::kind));
            written.map_err(serde_json::Error::io)?;
            if fail { Err(serde::ser::Error::custom("failed on purpose")) } else { Ok(()) }
        }
    }

    async fn body(response: Response) -> Result<Vec<u8>, axum::Error> {
        axum::body::to_bytes(response.into_body(), usize::MAX).await.map(|b| b.to_vec())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_document_of_many_pieces_arrives_whole() {
        let (done, report) = std::sync::mpsc::channel();
        let len = 5 * CHUNK + 123;
        let response = stream_json(None, writer(len, false, done));
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = body(response).await.unwrap();
        assert_eq!(bytes.len(), len);
        assert!(bytes.starts_with(b"\"xx") && bytes.ends_with(b"xx\""));
        assert_eq!(report.recv().unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_document_that_fails_to_be_written_ends_in_an_error_not_cut_short() {
        let (done, _report) = std::sync::mpsc::channel();
        // Whole pieces went out before the failure: the body still fails.
        let response = stream_json(None, writer(3 * CHUNK, true, done));
        assert!(body(response).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failure_while_the_client_lags_still_ends_the_body_in_an_error() {
        let (done, report) = std::sync::mpsc::channel();
        // Two whole pieces fill the pieces written ahead; the writer then
        // fails with nobody reading, and only then the client reads.
        let response = stream_json(None, writer(CHUNKS_AHEAD * CHUNK + 10, true, done));
        let written = tokio::task::spawn_blocking(move || report.recv().unwrap()).await.unwrap();
        assert_eq!(written, None);
        tokio::time::sleep(Duration::from_millis(100)).await; // (the writer returns)
        assert!(body(response).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn writing_stops_when_the_client_goes_away() {
        let (done, report) = std::sync::mpsc::channel();
        // Far more than the pieces written ahead: the writer must notice.
        drop(stream_json(None, writer(100 * CHUNK, false, done)));
        let written = tokio::task::spawn_blocking(move || report.recv().unwrap()).await.unwrap();
        assert_eq!(written, Some(io::ErrorKind::BrokenPipe));
    }
}
