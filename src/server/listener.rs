//! The client listener: accepts connections and hands each to the application in a task of
//! its own. Pingora's listening service does the same, but every connection's task there is
//! sized for a TLS handshake it never does on this cleartext listener (about 9 KiB a
//! connection, docs/BENCHMARKS.md); this one holds only the connection.

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Pingora's own listen backlog: a burst of connections queues instead of being refused.
const BACKLOG: i32 = 65535;

pub struct ClientListener<A> {
    name: String,
    /// Bound when the server is assembled, so a taken port fails the start at once.
    listener: Option<std::net::TcpListener>,
    app: Arc<A>,
}

impl<A> ClientListener<A> {
    pub fn bind(name: &str, addr: SocketAddr, app: A) -> std::io::Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        Ok(ClientListener {
            name: name.into(),
            listener: Some(socket.into()),
            app: Arc::new(app),
        })
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> Service for ClientListener<A> {
    async fn start_service(
        &mut self,
        _fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let listener = match self.listener.take().map(TcpListener::from_std) {
            Some(Ok(listener)) => listener,
            Some(Err(e)) => {
                log::error!("{}: cannot listen: {e}", self.name);
                return;
            }
            None => return,
        };
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                    continue;
                }
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let app = self.app.clone();
                    let shutdown = shutdown.clone();
                    // An SSE stream is small writes that must leave when written: with Nagle's
                    // algorithm a chunk written while the previous one is unacknowledged waits
                    // for the client's delayed ACK, ~40 ms.
                    if let Err(e) = tcp.set_nodelay(true) {
                        log::debug!("{}: TCP_NODELAY: {e}", self.name);
                    }
                    tokio::spawn(async move {
                        let mut stream = L4Stream::from(tcp);
                        let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
                        let _ = digest.peer_addr.set(Some(PeerAddr::Inet(peer)));
                        stream.set_socket_digest(digest);
                        app.process_new(Box::new(stream), &shutdown).await;
                    });
                }
                Err(e) => {
                    // Out of file descriptors, mostly: back off instead of spinning.
                    log::warn!("{}: accept failed: {e}", self.name);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        log::info!("{}: stopped accepting connections", self.name);
        // Lets Pingora close idle kept-alive connections now rather than at their timeout.
        self.app.cleanup().await;
    }

    fn name(&self) -> &str {
        &self.name
    }
}
