//! The floor of a Pingora proxy's cost per chunk (`bench --compare --relay`): the sidecar's
//! client listener and Pingora's proxy loop relaying Venice's encrypted stream unchanged to a
//! client that speaks E2EE itself, spending one bare chunk decryption (on a chunk of its own)
//! per encrypted event and nothing else. The sidecar does all of that plus its own work.

use super::load::ChunkCounter;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::prelude::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use venice_e2ee_proxy::e2ee::codec::KeyPair;
use venice_e2ee_proxy::server::listener::ClientListener;

struct Relay {
    upstream: SocketAddr,
    key: KeyPair,
    /// Chunks encrypted to `key`, one decrypted per encrypted event relayed, in turn: distinct
    /// ones, as a stream's are, not one the caches and branch predictors learn.
    packed: Vec<String>,
    next: AtomicUsize,
}

#[async_trait]
impl ProxyHttp for Relay {
    /// Counts the encrypted events of one answer, read in pieces as the client's is.
    type CTX = ChunkCounter;

    fn new_ctx(&self) -> ChunkCounter {
        ChunkCounter::default()
    }

    // As the sidecar: no downstream modules.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut ChunkCounter,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        events: &mut ChunkCounter,
    ) -> Result<Option<Duration>> {
        for _ in 0..body.as_deref().map_or(0, |piece| events.count(piece)) {
            let at = self.next.fetch_add(1, Ordering::Relaxed) % self.packed.len();
            std::hint::black_box(self.key.decrypt(&self.packed[at]).ok());
        }
        Ok(None)
    }
}

/// Serves the relay until the process is killed.
pub fn run(listen: SocketAddr, upstream: SocketAddr) -> Result<(), String> {
    venice_e2ee_proxy::server::raise_fd_limit();
    let conf = pingora::server::configuration::ServerConf {
        threads: venice_e2ee_proxy::server::default_threads(),
        ..Default::default()
    };
    let key = KeyPair::generate();
    let packed = (0..64)
        .map(|i| {
            venice_e2ee_proxy::e2ee::codec::encrypt(
                &key.recipient(),
                format!(" token{i}").as_bytes(),
            )
        })
        .collect();
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let relay = Relay {
        upstream,
        key,
        packed,
        next: AtomicUsize::new(0),
    };
    let app = pingora::proxy::http_proxy(&server.configuration, relay);
    let listener = ClientListener::bind("relay", listen, app).map_err(|e| e.to_string())?;
    server.add_service(listener);
    server.run_forever()
}
