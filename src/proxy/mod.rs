//! The Pingora glue: each hook does one thing and delegates to the modules that hold the
//! logic (`chat_request`, `chat_response`, `routes`).

mod chat_request;
mod chat_response;
pub(crate) mod gate;
mod own_answer;
mod relay;
mod request_id;
mod respond;
pub(crate) mod routes;

use crate::attestation::receipt_checks::Tap;
use crate::exchange::prepared::Prepared;
use crate::metrics::METRICS;
use crate::state::AppState;
use crate::venice::{HEADER_CLIENT_PUB_KEY, HEADER_MODEL_PUB_KEY, HEADER_SIGNING_ALGO};
use async_trait::async_trait;
use bytes::Bytes;
use chat_response::Phase;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType};
use routes::Route;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct VeniceProxy {
    state: Arc<AppState>,
}

impl VeniceProxy {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        VeniceProxy { state }
    }
}

pub(crate) struct Ctx {
    route: Route,
    /// Boxed: the context lives inside Pingora's per-connection future for as long as a
    /// stream lasts, and most of that time only the relay phase is needed.
    prepared: Option<Box<Prepared>>,
    phase: Option<Phase>,
    started: Instant,
    first_byte: Option<Duration>,
    /// The answer's bytes hashed for its ACI receipt, checked once the answer is whole.
    /// Boxed, like `prepared`: the context lives as long as the connection.
    receipt: Option<Box<Tap>>,
    /// Held while a chat completion is in flight (`server.max_concurrent_chats`).
    _permit: Option<crate::state::ChatPermit>,
    /// Whose request (the client token's index).
    tenant: crate::config::Tenant,
    /// Body bytes handed to Pingora for the client so far.
    produced: usize,
    /// The model the request named, once read (for the access log and metrics, also when
    /// the request fails).
    model: Option<String>,
    /// On every log line of the request, echoed on its response (`request_id`).
    request_id: String,
    /// Counts the request as in flight until the context is dropped.
    _in_flight: crate::state::InFlight,
}

fn is_timeout(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout
    )
}

#[async_trait]
impl ProxyHttp for VeniceProxy {
    type CTX = Ctx;

    /// No downstream modules. Pingora's default is a response-compression module that is
    /// disabled yet still runs on every header and body task; a sidecar's answers to a local
    /// client are not compressed (streamed tokens least of all).
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> Ctx {
        Ctx {
            route: Route::NotFound,
            prepared: None,
            phase: None,
            started: Instant::now(),
            first_byte: None,
            receipt: None,
            _permit: None,
            tenant: 0,
            produced: 0,
            model: None,
            request_id: String::new(),
            _in_flight: crate::state::InFlight::new(&self.state),
        }
    }

    /// Routes the request; everything but chat is answered here. Chat requests are read,
    /// validated, attested and encrypted here, before any upstream connection exists.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> pingora::Result<bool> {
        // Kept in the request header too, where every response written reads it back.
        let given = session.req_header().headers.get(request_id::HEADER);
        ctx.request_id = request_id::of(given.map(|v| v.as_bytes()));
        session
            .req_header_mut()
            .insert_header(request_id::HEADER, ctx.request_id.as_str())?;
        // Idle keep-alive connections are closed after this (Pingora's default is never),
        // where the client allows keep-alive at all.
        if session.get_keepalive().is_some() {
            let idle = self.state.config.server.keepalive_timeout.as_secs().max(1);
            session.set_keepalive(Some(idle));
        }
        let header = session.req_header();
        ctx.route = Route::classify(header.method.as_str(), header.uri.path());
        let dialect = ctx.route.dialect();
        match gate::admit(&self.state, &ctx.route, header) {
            Ok((tenant, permit)) => {
                ctx.tenant = tenant;
                ctx._permit = permit;
            }
            Err(e) => {
                // The body is left unread: the connection cannot serve another request.
                session.set_keepalive(None);
                respond::error(session, dialect, &e).await?;
                return Ok(true);
            }
        }
        if !ctx.route.is_chat() {
            routes::answer(&self.state, session, &ctx.route).await?;
            return Ok(true);
        }
        let prepared =
            chat_request::prepare(&self.state, session, dialect, ctx.tenant, &mut ctx.model).await;
        let mut prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                respond::error(session, dialect, &e).await?;
                return Ok(true);
            }
        };
        let answered = own_answer::answer(&self.state, session, &mut prepared).await?;
        ctx.prepared = Some(Box::new(prepared));
        match answered {
            own_answer::Answered::ByPingora => Ok(false),
            own_answer::Answered::Here(began) => {
                ctx.first_byte = began.map(|b| b.duration_since(ctx.started));
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Ctx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let addr =
            self.state.upstream_addr().await.map_err(|e| {
                Error::because(ErrorType::ConnectError, "resolving the Venice host", e)
            })?;
        let upstream = &self.state.upstream;
        let venice = &self.state.config.venice;
        let mut peer = HttpPeer::new(addr, upstream.tls, upstream.host.clone());
        peer.options.connection_timeout = Some(venice.connect_timeout);
        peer.options.total_connection_timeout = Some(venice.connect_timeout * 2);
        // Pingora has one read timeout for every upstream read, headers and body alike.
        peer.options.read_timeout = Some(venice.first_byte_timeout.max(venice.idle_timeout));
        peer.options.write_timeout = Some(venice.idle_timeout);
        if upstream.tls {
            peer.options.set_http_version(2, 1);
        }
        Ok(Box::new(peer))
    }

    /// Replaces the client's request line and headers: nothing of the client's headers
    /// (its token, cookies, user agent) travels upstream.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        let prepared = ctx.prepared.as_ref().expect("set by request_filter");
        let path = format!("{}/chat/completions", self.state.upstream.path);
        let mut req = RequestHeader::build("POST", path.as_bytes(), Some(10))?;
        // Pingora has already set the version for the negotiated upstream protocol (h1/h2).
        req.set_version(upstream_request.version);
        req.insert_header("host", self.state.upstream.authority())?;
        req.insert_header("authorization", self.state.authorization.as_str())?;
        req.insert_header("content-type", "application/json")?;
        req.insert_header("content-length", prepared.body.len().to_string())?;
        req.insert_header("accept", "text/event-stream")?;
        // The proxy must read the SSE to decrypt it.
        req.insert_header("accept-encoding", "identity")?;
        req.insert_header(
            "user-agent",
            concat!("venice-e2ee-proxy/", env!("CARGO_PKG_VERSION")),
        )?;
        req.insert_header(HEADER_CLIENT_PUB_KEY, prepared.client_key.pair.public_hex())?;
        req.insert_header(HEADER_MODEL_PUB_KEY, prepared.attested.key.key_hex.as_str())?;
        req.insert_header(HEADER_SIGNING_ALGO, "ecdsa")?;
        *upstream_request = req;
        Ok(())
    }

    /// Swaps the client's body for the encrypted one (see `chat_request::read_body`).
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        let prepared = ctx.prepared.as_ref().expect("set by request_filter");
        *body = Some(if end_of_stream {
            prepared.body.clone()
        } else {
            Bytes::new()
        });
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        ctx.first_byte = Some(ctx.started.elapsed());
        let prepared = ctx.prepared.as_mut().expect("set by request_filter");
        if prepared.stops.is_some() {
            // A stop sequence cancels the upstream, after which Pingora does not keep the
            // client's connection: say so up front (`Connection: close`), so no client pools
            // it and races its next request onto a closing socket.
            session.set_keepalive(None);
        }
        if upstream_response.status.as_u16() == 200 {
            let receipt_id = upstream_response
                .headers
                .get("x-receipt-id")
                .and_then(|v| v.to_str().ok());
            ctx.receipt = Tap::new(
                self.state.receipts.mode(),
                &prepared.attested,
                &prepared.body,
                receipt_id,
                &ctx.request_id,
            )
            .map(Box::new);
        }
        let (header, phase) = chat_response::begin(
            prepared,
            upstream_response,
            session.as_downstream().is_http2(),
        )?;
        *upstream_response = header;
        upstream_response.insert_header(request_id::HEADER, ctx.request_id.as_str())?;
        ctx.phase = Some(phase);
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> pingora::Result<Option<Duration>> {
        if let Some(tap) = ctx.receipt.as_mut() {
            // The receipt hashes Venice's bytes as they arrived, before they are decrypted.
            if let Some(b) = body.as_ref() {
                tap.update(b);
            }
            if end_of_stream {
                tap.complete();
            }
        }
        if let Some(phase) = ctx.phase.as_mut() {
            let produced = ctx.produced;
            let stopped = chat_response::body(phase, body, end_of_stream, &ctx.request_id);
            ctx.produced += body.as_ref().map_or(0, Bytes::len);
            // Pingora writes the pieces it filtered together only once all are filtered, and
            // an error drops them: cancel only once everything before is with the client.
            if stopped && session.body_bytes_sent() >= produced {
                return Err(Error::explain(
                    chat_response::STOPPED,
                    "the answer ended at a stop sequence",
                ));
            }
        }
        Ok(None)
    }

    /// The encrypted body is held in memory, so a request that failed on a reused pooled
    /// connection can be sent again safely, POST or not.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        _session: &mut Session,
        e: Box<Error>,
        _ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        e.retry.decide_reuse(client_reused);
        e
    }

    /// Every failure the client sees is in its dialect: a JSON error before the response
    /// began, one SSE error event after a stream began.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        if chat_response::is_stopped(ctx.phase.as_ref()) {
            // The client has its whole answer: end its body cleanly; Pingora drops the
            // upstream, which stops generating what nobody will read.
            if session.as_downstream_mut().finish_body().await.is_err() {
                log::debug!("could not end a stopped stream");
            }
            return FailToProxy {
                error_code: 200,
                can_reuse_downstream: false,
            };
        }
        let timeout = is_timeout(e);
        if session.response_written().is_some() {
            // A stream that began: end it cleanly with one error event.
            let event = ctx
                .phase
                .as_mut()
                .and_then(|p| chat_response::late_failure_event(p, e.etype().as_str(), timeout));
            // The error event, then the connection closes without the body's last chunk:
            // after an upstream transport failure Pingora may not keep the connection, and
            // a client that saw a clean end would pool it and race its next request onto a
            // closing socket. A body that does not end cleanly is never reused.
            let ended = match event {
                Some(event) => session
                    .write_response_body(Some(event), false)
                    .await
                    .is_ok(),
                None => false,
            };
            if !ended {
                log::debug!("could not end the stream with an error event");
            }
            return FailToProxy {
                error_code: 502,
                can_reuse_downstream: false,
            };
        }
        if e.esource() == &ErrorSource::Downstream {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        // The connection is not reused: say so (`Connection: close`), or a client may race
        // its next request onto a socket that is about to close.
        session.set_keepalive(None);
        let err = chat_response::proxy_failure(e, timeout);
        let _ = respond::error(session, ctx.route.dialect(), &err).await;
        FailToProxy {
            error_code: err.status,
            can_reuse_downstream: false,
        }
    }

    /// Pingora's own error lines name the request by its id too.
    fn request_summary(&self, session: &Session, ctx: &Ctx) -> String {
        format!(
            "{}, request_id: {}",
            session.as_ref().request_summary(),
            ctx.request_id
        )
    }

    /// An answer cut at a stop sequence cancels its upstream through an error: not an error.
    fn suppress_error_log(&self, _session: &Session, ctx: &Ctx, _e: &Error) -> bool {
        chat_response::is_stopped(ctx.phase.as_ref())
    }

    /// One access-log line and the request's metrics. Never message text, keys or tokens.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let e = e.filter(|_| !chat_response::is_stopped(ctx.phase.as_ref()));
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        // A model Venice lists (or "other": labels stay bounded whatever clients send).
        let model = match ctx.model.as_deref() {
            None => "-",
            Some(m) if self.state.catalog.lists(m) => m,
            Some(_) => "other",
        };
        let stream = ctx
            .prepared
            .as_ref()
            .is_some_and(|p| matches!(p.mode, crate::chat::answer::Mode::Stream { .. }));
        let elapsed = ctx.started.elapsed();
        // Sessions appear only as a salted tag, never as the id.
        let tag = ctx
            .prepared
            .as_ref()
            .and_then(|p| p.session.as_deref())
            .map_or_else(
                || "-".to_string(),
                |id| self.state.sessions.tag(ctx.tenant, id),
            );
        let peer = session
            .client_addr()
            .map_or_else(|| "-".to_string(), ToString::to_string);
        log::info!(
            target: "access",
            request_id = ctx.request_id.as_str(), peer = peer.as_str();
            "{} {} model={} status={} stream={} session={} duration_ms={} ttfb_ms={}{}",
            session.req_header().method,
            ctx.route.label(),
            model,
            status,
            stream,
            tag,
            elapsed.as_millis(),
            ctx.first_byte.map_or(-1, |d| d.as_millis() as i64),
            e.map(|e| format!(" error={}", e.etype().as_str())).unwrap_or_default(),
        );
        let m = &METRICS;
        let route = ctx.route.label();
        m.requests
            .with_label_values(&[route, model, &status.to_string()])
            .inc();
        m.duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        if let Some(ttfb) = ctx.first_byte {
            m.ttft
                .with_label_values(&[model])
                .observe(ttfb.as_secs_f64());
        }
        if let Some(p) = &ctx.prepared {
            m.bytes
                .with_label_values(&["upstream_request"])
                .inc_by(p.body.len() as u64);
        }
        m.bytes
            .with_label_values(&["client_response"])
            .inc_by(session.body_bytes_sent() as u64);
        if let Some(chunks) = ctx.phase.as_ref().and_then(chat_response::decrypted_chunks) {
            m.decrypted_chunks.inc_by(chunks);
        }
        // A receipt covers a whole answer; a broken one has none worth fetching.
        if let Some(tap) = ctx
            .receipt
            .take()
            .filter(|t| t.is_complete() && e.is_none())
        {
            let id = ctx.phase.as_ref().and_then(chat_response::answer_id);
            self.state
                .receipts
                .check_later(*tap, model.to_string(), id.map(str::to_string));
        }
    }
}
