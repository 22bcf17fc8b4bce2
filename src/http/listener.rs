//! The HTTP listener: a TCP listener that holds at most
//! `httpMaxConnections` connections open at once, and the loop that serves
//! each connection (HTTP/1.1, or HTTP/2 with prior knowledge: a client
//! holding many blocking queries needs one connection, not one per query).

use std::sync::Arc;
use std::time::Duration;

/// A TCP listener that holds at most
/// `httpMaxConnections` connections
/// open at once (hyper already bounds header size and count).
pub struct CappedListener {
    inner: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
}

impl CappedListener {
    pub(crate) fn new(inner: tokio::net::TcpListener, max: usize) -> Self {
        CappedListener { inner, slots: Arc::new(tokio::sync::Semaphore::new(max)) }
    }
}

/// A connection and the slot it occupies, released when it closes.
pub struct CappedStream {
    stream: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
                // The semaphore is never closed.
                return std::future::pending().await;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => return (CappedStream { stream, _slot: slot }, addr),
                Err(e) => {
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for CappedStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CappedStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The most concurrent requests (streams) on one HTTP/2 connection: a
/// client's held blocking queries (`mesos-dns watch` holds all of its
/// lookups on one connection).
pub const MAX_STREAMS: u32 = 16_384;

/// Serve `router` on `listener` until `stop` is notified; then requests in
/// flight get a second to finish (a held blocking query is cut).
pub async fn serve(
    mut listener: CappedListener,
    router: axum::Router,
    stop: Arc<tokio::sync::Notify>,
) {
    use axum::serve::Listener;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(MAX_STREAMS);
    let service = hyper_util::service::TowerToHyperService::new(router);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.notified() => break,
        };
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service.clone());
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("http connection: {e}");
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}
