//! Client connections, below HTTP: a cap on how many are open at once (one beyond it gets a
//! 503 and is closed), and a deadline for each request's header. Pingora 0.9 has neither: it
//! accepts without limit, and its per-read timeout lets a client that trickles a byte now and
//! then hold a connection (and a task) forever.

use crate::error::ApiError;
use crate::metrics::METRICS;
use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType,
};
use pingora::server::ShutdownWatch;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// Wraps Pingora's HTTP application: every accepted connection takes a slot or is refused.
pub(crate) struct Guarded<A> {
    inner: Arc<A>,
    slots: Arc<Semaphore>,
    limit: usize,
    header_timeout: Duration,
}

impl<A> Guarded<A> {
    pub(crate) fn new(inner: A, limit: usize, header_timeout: Duration) -> Self {
        Guarded {
            inner: Arc::new(inner),
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            header_timeout,
        }
    }
}

/// Counts an open connection for as long as it lives.
struct Open;

impl Open {
    fn new() -> Self {
        METRICS.client_connections.inc();
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        METRICS.client_connections.dec();
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    /// Serves the whole connection, HTTP/1.1 keep-alive included (the listener is cleartext
    /// without h2c, so this is the only path Pingora's own `ServerApp` would take), so the slot
    /// is held exactly as long as the connection is open and each request's header gets its
    /// deadline. Running the loop here also keeps Pingora's larger connection future out of
    /// every connection's memory.
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            METRICS.connections_refused.inc();
            // Boxed: its drain buffer would otherwise sit in every connection's future.
            Box::pin(refuse(stream, self.limit)).await;
            return None;
        };
        let _open = Open::new();
        let mut session =
            ServerSession::new_http1(Box::new(HeaderDeadline::new(stream, self.header_timeout)));
        // Pingora's defaults for a new connection.
        session.set_keepalive((!*shutdown.borrow()).then_some(60));
        session.set_keepalive_reuses_remaining(
            self.inner
                .server_options()
                .and_then(|o| o.keepalive_request_limit),
        );
        loop {
            let (stream, settings) = self
                .inner
                .process_new_http(session, shutdown)
                .await?
                .consume();
            // Pingora hands back the stream it was given: ours.
            let mut guarded = stream.into_any().downcast::<HeaderDeadline>().ok()?;
            guarded.await_next_request();
            session = ServerSession::new_http1(guarded);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
        }
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await
    }
}

/// The refusal: a JSON 503 (read before any request, so in no dialect in particular) that
/// SDKs retry after `Retry-After`, then a lingering
/// close (what the client already sent is read and dropped, so the close is not a reset that
/// could destroy the answer before the client reads it).
async fn refuse(mut stream: Stream, limit: usize) {
    let err = ApiError::new(
        503,
        "server_error",
        "too_many_connections",
        format!(
            "the proxy has {limit} client connections open (server.max_connections); retry shortly"
        ),
    );
    let body = err.body();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let written = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.flush().await
    };
    if tokio::time::timeout(Duration::from_secs(1), written)
        .await
        .is_ok_and(|r| r.is_ok())
    {
        Shutdown::shutdown(stream.as_mut()).await;
        let mut sink = [0u8; 4096];
        let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}

const HEADER_TIMEOUT_RESPONSE: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Where the connection is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request header: the deadline runs. `line` is whether the current header line
    /// has content yet; `begun` whether any byte of the request has arrived.
    Header { line: bool, begun: bool },
    /// The header is complete: body and answer have their own timeouts.
    Past,
    /// Between requests on a kept-alive connection: the idle timeout applies until the next
    /// request's first byte starts its deadline.
    Idle,
}

/// A client stream whose request header must be complete within `timeout` of the connection
/// opening (first request) or of its first byte (later requests).
#[derive(Debug)]
pub(crate) struct HeaderDeadline {
    io: Stream,
    timeout: Duration,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
}

impl HeaderDeadline {
    fn new(io: Stream, timeout: Duration) -> Self {
        HeaderDeadline {
            io,
            timeout,
            phase: Phase::Header {
                line: false,
                begun: false,
            },
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn await_next_request(&mut self) {
        self.phase = Phase::Idle;
    }

    /// Follows the bytes read until the blank line that ends a header (CRLF or bare LF, as
    /// Pingora's parser accepts; blank lines before a request line do not count).
    fn observe(&mut self, mut bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.phase == Phase::Idle {
            self.phase = Phase::Header {
                line: false,
                begun: false,
            };
            self.deadline.as_mut().reset(Instant::now() + self.timeout);
        }
        let Phase::Header {
            mut line,
            mut begun,
        } = self.phase
        else {
            return;
        };
        let has_content = |s: &[u8]| s.iter().any(|&b| b != b'\r');
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            if line || has_content(&bytes[..nl]) {
                begun = true;
            } else if begun {
                self.phase = Phase::Past;
                return;
            }
            line = false;
            bytes = &bytes[nl + 1..];
        }
        line = line || has_content(bytes);
        self.phase = Phase::Header {
            line,
            begun: begun || line,
        };
    }

    /// The deadline passed: a client that began a request is told (best effort, the socket's
    /// buffer has room for these bytes), one that never sent anything is simply closed.
    fn expire(&mut self, cx: &mut Context<'_>) -> io::Error {
        if matches!(self.phase, Phase::Header { begun: true, .. }) {
            let _ = Pin::new(&mut self.io).poll_write(cx, HEADER_TIMEOUT_RESPONSE);
        }
        self.phase = Phase::Past;
        log::info!(
            "a client request header was not complete within {:?}; connection closed",
            self.timeout
        );
        io::Error::new(io::ErrorKind::TimedOut, "request header timeout")
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.phase, Phase::Header { .. }) && this.deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(this.expire(cx)));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            if this.phase != Phase::Past {
                this.observe(&buf.filled()[before..]);
            }
        }
        read
    }
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for HeaderDeadline {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(self.io.as_mut()).await
    }
}

impl UniqueID for HeaderDeadline {
    fn id(&self) -> UniqueIDType {
        self.io.id()
    }
}

impl Ssl for HeaderDeadline {}

impl GetTimingDigest for HeaderDeadline {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.io.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.io.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.io.get_write_pending_time()
    }
}

impl GetProxyDigest for HeaderDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.io.get_proxy_digest()
    }
}

impl GetSocketDigest for HeaderDeadline {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.io.get_socket_digest()
    }
}

#[async_trait]
impl Peek for HeaderDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.io.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(timeout: Duration) -> (HeaderDeadline, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        (HeaderDeadline::new(Box::new(ours), timeout), theirs)
    }

    fn fed(pieces: &[&[u8]]) -> Phase {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut d, _peer) = guarded(Duration::from_secs(5));
            for p in pieces {
                d.observe(p);
            }
            d.phase
        })
    }

    #[test]
    fn a_header_ends_at_its_blank_line_however_it_is_split() {
        let whole = b"\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nbody\r\n\r\n";
        for cut in 0..whole.len() {
            for cut2 in cut..whole.len() {
                let phase = fed(&[&whole[..cut], &whole[cut..cut2], &whole[cut2..]]);
                assert_eq!(phase, Phase::Past, "cut at {cut}/{cut2}");
            }
        }
        assert_eq!(fed(&[b"GET / HTTP/1.1\nHost: x\n\n"]), Phase::Past);
        for partial in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\n\r",
            b"\r\n\r\n\n",
        ] {
            assert!(
                matches!(fed(&[partial]), Phase::Header { .. }),
                "{partial:?}"
            );
        }
        assert_eq!(
            fed(&[b"\r\n"]),
            Phase::Header {
                line: false,
                begun: false
            },
            "a blank line before a request is not one"
        );
        assert_eq!(
            fed(&[b"GE"]),
            Phase::Header {
                line: true,
                begun: true
            }
        );
    }

    #[tokio::test]
    async fn a_trickled_header_times_out_with_408_and_a_complete_one_never_does() {
        let (mut d, mut peer) = guarded(Duration::from_millis(200));
        let mut buf = [0u8; 64];
        peer.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(d.read(&mut buf).await.unwrap() > 0);
        let trickle = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if peer.write_all(b"X").await.is_err() {
                    break;
                }
            }
            let mut answer = vec![0u8; HEADER_TIMEOUT_RESPONSE.len()];
            peer.read_exact(&mut answer).await.unwrap();
            answer
        });
        let started = Instant::now();
        let err = loop {
            match d.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_millis(400));
        drop(d);
        assert_eq!(trickle.await.unwrap(), HEADER_TIMEOUT_RESPONSE);

        // Complete, then silent past the deadline: the body and answer are not its business.
        let (mut d, mut peer) = guarded(Duration::from_millis(100));
        peer.write_all(b"POST / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(d.read(&mut buf).await.unwrap() > 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        peer.write_all(b"body").await.unwrap();
        assert_eq!(d.read(&mut buf).await.unwrap(), 4);

        // Between requests the deadline waits for the next request's first byte.
        d.await_next_request();
        tokio::time::sleep(Duration::from_millis(200)).await;
        peer.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(d.read(&mut buf).await.unwrap() > 0);
        let err = d.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_without_an_answer() {
        let (mut d, mut peer) = guarded(Duration::from_millis(50));
        let mut buf = [0u8; 8];
        let err = d.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(d);
        assert_eq!(peer.read(&mut buf).await.unwrap(), 0);
    }
}
