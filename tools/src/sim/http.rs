//! The simulator's HTTP surface (HTTP/1.1 and HTTP/2, plain or TLS) and its handlers.

use super::aci::{Exchange, Layout, ReceiptFault};
use super::quote::{self, QuoteParams};
use super::script::{AttestationFault, ChatFault, ChatRecord, Reply};
use super::{SimState, MODELS};
use venice_e2ee_proxy::attestation::aci::jcs;
use venice_e2ee_proxy::attestation::unix_now as now;
use venice_e2ee_proxy::e2ee::codec::{self, KeyPair};
// PEM chains travel percent-encoded in PCS response headers.
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use sha2::Digest as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use venice_e2ee_proxy::venice::client::percent_encode;
use venice_e2ee_proxy::venice::{HEADER_CLIENT_PUB_KEY, HEADER_MODEL_PUB_KEY, HEADER_SIGNING_ALGO};

type Body = BoxBody<Bytes, std::io::Error>;

pub(super) async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<SimState>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        // As a streaming API server does: an SSE event goes out when written, not after the
        // peer's delayed ACK of the header (Nagle, ~40 ms a stream).
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => {
                        builder
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await
                    }
                    Err(_) => return,
                },
                None => {
                    builder
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await
                }
            };
        });
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(body.into())
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("valid response")
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    full(status, v.to_string(), "application/json")
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({ "error": message }))
}

async fn handle(
    state: Arc<SimState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    if ["/nras/", "/rekor/", "/pcs/", "/v1/aci/"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let seen = super::script::ThirdPartyRequest {
            path: path.clone(),
            headers,
        };
        state
            .record
            .lock()
            .expect("poisoned")
            .third_party
            .push(seen);
    }
    let response = match (method.as_str(), path.as_str()) {
        ("POST", "/_sim/script") => control_script(&state, req).await,
        ("GET", "/_sim/record") => {
            let record = state.record.lock().expect("poisoned").clone();
            json_response(
                StatusCode::OK,
                &serde_json::to_value(record).expect("record serializes"),
            )
        }
        // The simulated NVIDIA attestation service (NRAS) shares the listener.
        ("POST", "/nras/v3/attest/gpu") => match req.into_body().collect().await {
            Ok(b) => match serde_json::from_slice::<Value>(&b.to_bytes()) {
                Ok(request) => json_response(StatusCode::OK, &state.nras.attest(&request)),
                Err(_) => error(StatusCode::BAD_REQUEST, "invalid JSON"),
            },
            Err(_) => error(StatusCode::BAD_REQUEST, "unreadable body"),
        },
        ("GET", "/nras/.well-known/jwks.json") => json_response(StatusCode::OK, &state.nras.jwks()),
        // The simulated Rekor.
        ("POST", "/rekor/api/v1/index/retrieve" | "/rekor/api/v1/log/entries/retrieve") => {
            rekor(&state, &path, req).await
        }
        // The simulated Intel PCS: collateral for the simulated PKI.
        ("GET", "/pcs/tdx/certification/v4/tcb") => pcs(
            &state.intel.tcb_info_body,
            "tcb-info-issuer-chain",
            &state.intel.tcb_chain,
        ),
        ("GET", "/pcs/tdx/certification/v4/qe/identity") => pcs(
            &state.intel.qe_identity_body,
            "sgx-enclave-identity-issuer-chain",
            &state.intel.tcb_chain,
        ),
        ("GET", "/pcs/sgx/certification/v4/pckcrl") => {
            let mut r = full(
                StatusCode::OK,
                state.intel.pck_crl.clone(),
                "application/pkix-crl",
            );
            r.headers_mut().insert(
                "sgx-pck-crl-issuer-chain",
                percent_encode(&state.intel.pck_crl_chain)
                    .parse()
                    .expect("header"),
            );
            r
        }
        ("GET", "/pcs/rootcacrl.der") => full(
            StatusCode::OK,
            state.intel.root_crl.clone(),
            "application/pkix-crl",
        ),
        // The ACI gateway's own attestation, on the host its ingress serves (unauthenticated).
        ("GET", "/v1/aci/attestation") => native_attestation(&state, &query),
        ("GET", p) if p.starts_with("/v1/aci/sessions/") => {
            session(&state, &p["/v1/aci/sessions/".len()..])
        }
        _ if !authorized(&state, &req) => error(StatusCode::UNAUTHORIZED, "Authentication failed"),
        ("GET", "/api/v1/models") => models(&state),
        ("GET", "/api/v1/tee/attestation") => attestation(&state, &query),
        // Venice's receipt endpoint as other clients use it, and the ACI spec's paths.
        ("GET", "/api/v1/tee/signature") => receipt(
            &state,
            query_param(&query, "request_id").unwrap_or_default(),
            true,
        ),
        ("GET", p) if p.starts_with("/api/v1/aci/receipts/") => {
            receipt(&state, &p["/api/v1/aci/receipts/".len()..], false)
        }
        ("GET", p) if p.starts_with("/api/v1/aci/sessions/") => {
            session(&state, &p["/api/v1/aci/sessions/".len()..])
        }
        ("POST", "/api/v1/chat/completions") => chat(&state, req).await,
        _ => error(StatusCode::NOT_FOUND, "Not found"),
    };
    Ok(response)
}

async fn rekor(state: &SimState, path: &str, req: Request<Incoming>) -> Response<Body> {
    state.record.lock().expect("poisoned").rekor_requests += 1;
    let fault = state.script.lock().expect("poisoned").rekor_fault;
    if fault == Some(super::rekor::RekorFault::Down) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Rekor is down");
    }
    let Ok(body) = req.into_body().collect().await else {
        return error(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let answer = if path.ends_with("/index/retrieve") {
        state.rekor.lookup(&request, fault)
    } else {
        state.rekor.entries(&request, fault)
    };
    json_response(StatusCode::OK, &answer)
}

fn pcs(body: &str, chain_header: &'static str, chain: &str) -> Response<Body> {
    let mut r = full(StatusCode::OK, body.to_string(), "application/json");
    r.headers_mut()
        .insert(chain_header, percent_encode(chain).parse().expect("header"));
    r
}

fn authorized(state: &SimState, req: &Request<Incoming>) -> bool {
    let expected = format!("Bearer {}", state.api_key);
    req.headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes())
}

async fn control_script(state: &SimState, req: Request<Incoming>) -> Response<Body> {
    let Ok(body) = req.into_body().collect().await else {
        return error(StatusCode::BAD_REQUEST, "unreadable body");
    };
    match serde_json::from_slice(&body.to_bytes()) {
        Ok(script) => {
            *state.script.lock().expect("poisoned") = script;
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

fn models(state: &SimState) -> Response<Body> {
    state.record.lock().expect("poisoned").model_lists += 1;
    let (deprecations, retired) = {
        let script = state.script.lock().expect("poisoned");
        (script.deprecations.clone(), script.retired.clone())
    };
    let data: Vec<Value> = MODELS
        .iter()
        .filter(|m| !retired.iter().any(|r| r == m.id))
        .map(|m| {
            let mut caps = json!({
                "supportsE2EE": m.e2ee,
                "supportsTeeAttestation": m.tee,
                "supportsFunctionCalling": m.function_calling,
                "supportsReasoning": m.reasoning,
                "supportsReasoningEffort": !m.efforts.is_empty(),
                "supportsVision": m.vision,
                "supportsWebSearch": true,
                "supportsResponseSchema": false,
            });
            if let Some(first) = m.efforts.first() {
                caps["reasoningEffortOptions"] = json!(m.efforts);
                caps["defaultReasoningEffort"] = json!(if m.efforts.contains(&"low") {
                    "low"
                } else {
                    first
                });
            }
            let mut model = json!({
                "id": m.id,
                "type": m.kind,
                "object": "model",
                "created": 1_760_000_000,
                "owned_by": "venice.ai",
                "model_spec": {
                    "name": m.name,
                    "availableContextTokens": m.context_tokens,
                    "capabilities": caps,
                }
            });
            if let Some(d) = deprecations.get(m.id) {
                model["model_spec"]["deprecation"] = d.clone();
            }
            model
        })
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// An attested session by id (served altered under `ReceiptFault::SessionAltered`).
fn session(state: &SimState, id: &str) -> Response<Body> {
    let altered =
        state.script.lock().expect("poisoned").receipt_fault == Some(ReceiptFault::SessionAltered);
    match state.gateway.session(id, altered) {
        Some(s) => json_response(StatusCode::OK, &s),
        None => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

/// A receipt by id: as Venice's signature endpoint answers (the countersignature beside
/// the `receipt` member), or as the gateway's native endpoint does (the document alone).
fn receipt(state: &SimState, id: &str, wrapped: bool) -> Response<Body> {
    match state.gateway.envelope(id) {
        Some(e) if wrapped => json_response(StatusCode::OK, &e),
        Some(e) => json_response(StatusCode::OK, &e["receipt"]),
        None => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The gateway's own report (`GET /v1/aci/attestation?nonce=`, §4): its quote binds the
/// spec's statement over the keyset digest and the nonce; the same CVM as Venice's ACI
/// answers, the same keyset. Faults: another workload, another keyset, another nonce, down.
fn native_attestation(state: &SimState, query: &str) -> Response<Body> {
    use super::script::AnchorFault;
    let (fault, forms) = {
        let script = state.script.lock().expect("poisoned");
        (script.anchor_fault, script.aci_forms)
    };
    if fault == Some(AnchorFault::Unavailable) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    let nonce: [u8; 32] = match hex::decode(query_param(query, "nonce").unwrap_or_default())
        .ok()
        .and_then(|n| n.try_into().ok())
    {
        Some(n) => n,
        None => return error(StatusCode::BAD_REQUEST, "nonce must be 64 lowercase hex"),
    };
    let mut keyset = state.gateway_keyset(None, None);
    if fault == Some(AnchorFault::OtherKeyset) {
        keyset["subject"] = json!("dstack-app://simulated/another-gateway");
    }
    let digest = jcs::digest(&keyset);
    let bound_nonce = if fault == Some(AnchorFault::WrongNonce) {
        rand::random()
    } else {
        nonce
    };
    let report_data = state.gateway.report_data(&keyset, &bound_nonce, forms);
    let workload = state.gateway_workload();
    let (name, rtmr) = if fault == Some(AnchorFault::OtherWorkload) {
        let mut rtmr = workload.rtmr;
        rtmr[1][0] ^= 0x01;
        ("another-gateway", rtmr)
    } else {
        (super::aci::GATEWAY, workload.rtmr)
    };
    let body = quote::body(
        &state.intel.template_body(),
        &QuoteParams {
            model: name,
            report_data,
            debug: false,
            rtmr: &rtmr,
            mr_config_id: &workload.mr_config_id,
        },
    );
    let quote = state.intel.quote(&body);
    let identity = state.gateway.identity_fields(&keyset);
    let mut report = json!({
        "api_version": "aci/1",
        "workload_keyset_digest": digest,
        "attestation": {
            "tee_type": "tdx",
            "workload_keyset": keyset,
            "report_data": hex::encode(&report_data[..32]),
            "source_provenance": {"repo_url": super::aci::SOURCE_REPO,
                "repo_commit": super::aci::SOURCE_COMMIT, "image_digest": null, "image_provenance": null},
            "evidence": {"quote": hex::encode(quote), "quote_report_data": hex::encode(report_data),
                "event_log": Value::Array(workload.events).to_string(), "app_compose": workload.app_compose,
                "key_custody": state.gateway.key_custody(&sha2::Sha256::digest(format!("app:{}", super::aci::GATEWAY))[..20], forms)}
        },
        "service_capabilities": {"supported_e2ee_versions": [], "serving": "aggregator"}
    });
    if let Some((workload_id, endorsement)) = identity {
        report["workload_id"] = json!(workload_id);
        report["attestation"]["keyset_endorsement"] = endorsement;
    }
    json_response(StatusCode::OK, &report)
}

fn attestation(state: &SimState, query: &str) -> Response<Body> {
    let model = query_param(query, "model").unwrap_or_default().to_string();
    let nonce_hex = query_param(query, "nonce")
        .unwrap_or_default()
        .to_ascii_lowercase();
    state
        .record
        .lock()
        .expect("poisoned")
        .attestations
        .push((model.clone(), nonce_hex.clone()));
    let nonce: [u8; 32] = match hex::decode(&nonce_hex).ok().and_then(|n| n.try_into().ok()) {
        Some(n) => n,
        None => return error(StatusCode::BAD_GATEWAY, "Nonce must be exactly 32 bytes"),
    };
    let Some(key) = state.model_key(&model) else {
        return error(
            StatusCode::NOT_FOUND,
            "Model not found or does not support TEE attestation",
        );
    };
    let (fault, drift, layout, aci_gpu, keyset_lifetime, served_workload, forms) = {
        let script = state.script.lock().expect("poisoned");
        (
            script.attestation_fault,
            script.attestation_drift.clone(),
            script.attestation_layout,
            script.aci_gpu,
            script.keyset_lifetime_secs,
            script.workload.clone(),
            script.aci_forms,
        )
    };
    if fault == Some(AttestationFault::ServerError) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "attestation service unavailable",
        );
    }
    let address = codec::address(&key.public_key());
    let bound_address = if fault == Some(AttestationFault::KeyNotBound) {
        codec::address(&KeyPair::generate().public_key())
    } else {
        address
    };
    let echoed = if fault == Some(AttestationFault::WrongNonce) {
        hex::encode(rand::random::<[u8; 32]>())
    } else {
        nonce_hex
    };
    // The ACI gateway's keyset lists the model keys (or, as a fault, another in this one's place).
    let keyset = layout.is_aci().then(|| {
        let replaced = (fault == Some(AttestationFault::KeyNotInKeyset))
            .then(|| (model.as_str(), KeyPair::generate().public_hex().to_string()));
        let not_after = if fault == Some(AttestationFault::ExpiredKeyset) {
            Some(now() - 60)
        } else {
            keyset_lifetime.map(|l| now() + l)
        };
        state.gateway_keyset(replaced, not_after)
    });
    let keyset_digest = keyset.as_ref().map(jcs::digest);
    let report_data = match (layout, &keyset) {
        (Layout::Aci, Some(k)) => {
            let bound_nonce = if fault == Some(AttestationFault::WrongStatement) {
                rand::random()
            } else {
                nonce
            };
            state.gateway.report_data(k, &bound_nonce, forms)
        }
        _ => quote::address_report_data(&bound_address, &nonce),
    };
    let identity = keyset
        .as_ref()
        .and_then(|k| state.gateway.identity_fields(k));
    // One gateway CVM serves every model in the ACI layouts.
    let workload = if layout.is_aci() {
        state.gateway_workload()
    } else {
        super::evidence::workload(&model, served_workload.as_ref())
    };
    let body = quote::body(
        &state.intel.template_body(),
        &QuoteParams {
            model: if layout.is_aci() {
                super::aci::GATEWAY
            } else {
                &model
            },
            report_data,
            debug: fault == Some(AttestationFault::DebugBit),
            rtmr: &workload.rtmr,
            mr_config_id: &workload.mr_config_id,
        },
    );
    let mut quote = state.intel.quote(&body);
    if fault == Some(AttestationFault::BadQuoteSignature) {
        // MRTD: outside REPORTDATA, so only the signature notices.
        quote[venice_e2ee_proxy::attestation::quote::offsets::MR_TD] ^= 0x01;
    }
    let mut events = workload.events;
    if fault == Some(AttestationFault::BadEventLog) {
        events[3]["digest"] = json!(hex::encode([0x42u8; 48]));
    }
    let app_compose = if fault == Some(AttestationFault::BadCompose) {
        // Any change to the text: MRCONFIGID no longer binds it.
        format!("{} ", workload.app_compose)
    } else {
        workload.app_compose
    };
    let gpu_fault = match fault {
        Some(AttestationFault::GpuNonce) => super::evidence::GpuFault::Nonce,
        Some(AttestationFault::GpuSignature) => super::evidence::GpuFault::Signature,
        _ => super::evidence::GpuFault::None,
    };
    let reported_model = if fault == Some(AttestationFault::WrongModel) {
        "e2ee-some-other-model".to_string()
    } else {
        model.clone()
    };
    let compose_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        app_compose.as_bytes(),
    ));
    let served_model = if fault == Some(AttestationFault::SubstitutedModel) {
        "simulated/e2ee-qwen3-32b".to_string()
    } else {
        format!("simulated/{model}")
    };
    let os_image = served_workload
        .as_ref()
        .and_then(|w| w.os_image_hash.clone())
        .unwrap_or_else(super::evidence::os_image_hash);
    let mut v = json!({
        "model_name": served_model,
        "signing_address": format!("0x{}", hex::encode(address)),
        "signing_algo": "ecdsa",
        "signing_public_key": key.public_hex(),
        "signing_key": key.public_hex(),
        "request_nonce": echoed,
        "nonce": echoed,
        "nonce_source": "client",
        "verified": fault != Some(AttestationFault::Unverified),
        "model": reported_model,
        "tee_provider": "simulated",
        "tee_hardware": "intel-tdx",
        "upstream_model": served_model,
    });
    match (keyset, keyset_digest) {
        (Some(keyset), Some(digest)) => {
            // Venice's ACI framing: dstack's root fields stay, the evidence is nested, and
            // the attested CVM is a gateway without GPUs: the GPU evidence it serves is its
            // upstream's, relayed (or an empty placeholder).
            let restated_digest = if fault == Some(AttestationFault::KeysetDigestMismatch) {
                jcs::sha256_tagged(b"another keyset")
            } else {
                digest
            };
            let mut restated_rd = report_data;
            if fault == Some(AttestationFault::RestatedReportData) {
                restated_rd[0] ^= 0xff;
            }
            let commit = if fault == Some(AttestationFault::UnmeasuredSource) {
                "0123456789abcdef0123456789abcdef01234567"
            } else {
                super::aci::SOURCE_COMMIT
            };
            v["tee_provider"] = json!("phala");
            v["api_version"] = json!("aci/1");
            v["workload_keyset_digest"] = json!(restated_digest);
            v["attestation"] = json!({
                "tee_type": "tdx",
                "vendor": "simulated-private-ai-gateway",
                "workload_keyset": keyset,
                // The statement's digest fills 32 bytes; the address form needs all 64.
                "report_data": if layout == Layout::Aci {
                    hex::encode(&restated_rd[..32])
                } else {
                    hex::encode(restated_rd)
                },
                "source_provenance": {"repo_url": super::aci::SOURCE_REPO, "repo_commit": commit,
                    "image_digest": null, "image_provenance": null},
                "evidence": {
                    "quote": hex::encode(quote),
                    "quote_report_data": hex::encode(restated_rd),
                    "event_log": Value::Array(events).to_string(),
                    "app_compose": app_compose,
                    "vm_config": json!({"num_gpus": 0, "vcpu": 8, "memory_size": 17179869184u64,
                        "os_image_hash": super::aci::DEV_OS_IMAGE, "image": "dstack-dev-0.5.9"}).to_string(),
                    "key_custody": null
                }
            });
            v["service_capabilities"] =
                json!({"supported_e2ee_versions": [], "serving": "aggregator"});
            if let Some((workload_id, endorsement)) = identity {
                v["workload_id"] = json!(workload_id);
                v["attestation"]["keyset_endorsement"] = endorsement;
            }
            match aci_gpu {
                super::script::AciGpu::Relayed => {
                    v["nvidia_payload"] = json!(state.gpus.payload(&nonce, gpu_fault))
                }
                super::script::AciGpu::Placeholder => {
                    v["nvidia_payload"] =
                        json!(json!({"nonce": hex::encode(nonce), "evidence_list": []}).to_string())
                }
                super::script::AciGpu::Absent => {}
            }
        }
        _ => {
            v["intel_quote"] = json!(hex::encode(quote));
            v["nvidia_payload"] = json!(state.gpus.payload(&nonce, gpu_fault));
            v["event_log"] = Value::Array(events);
            v["info"] = json!({
                "app_id": "simulated",
                "compose_hash": compose_hash,
                "os_image_hash": os_image,
                "tcb_info": {"app_compose": app_compose},
                "vm_config": json!({"os_image_hash": os_image,
                    "num_gpus": super::evidence::GPUS, "image": super::evidence::OS_IMAGE}).to_string(),
            });
            if fault == Some(AttestationFault::GatewayClaimedOnly) {
                // Finding 1 of issue 32, as an attacker serving the real Venice would.
                let o = v.as_object_mut().expect("an object");
                o.remove("nvidia_payload");
                o.insert("attestation".into(), json!({
                    "evidence": {"vm_config": {"num_gpus": 0}},
                    "source_provenance": {"image_digest": format!("sha256:{}", super::rekor::digest_of(super::rekor::MODEL_IMAGE))}
                }));
            }
        }
    }
    super::drift::apply_all(&mut v, &drift);
    if fault == Some(AttestationFault::Oversized) {
        v["padding"] = json!("p".repeat(9 << 20));
    }
    json_response(StatusCode::OK, &v)
}

/// Validates a chat request as Venice does. Returns the decrypted messages and the client key
/// to encrypt the answer to, or the error response Venice would give.
fn check_chat(
    state: &SimState,
    headers: &hyper::HeaderMap,
    body: &Value,
) -> Result<(Vec<String>, k256::PublicKey), (StatusCode, &'static str)> {
    let bad = |m| Err((StatusCode::BAD_REQUEST, m));
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(spec) = MODELS.iter().find(|m| m.id == model) else {
        return Err((StatusCode::NOT_FOUND, "Model not found"));
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(client), Some(model_pub), Some(algo)) = (
        header(HEADER_CLIENT_PUB_KEY),
        header(HEADER_MODEL_PUB_KEY),
        header(HEADER_SIGNING_ALGO),
    ) else {
        return bad("E2EE models require the X-Venice-TEE-* headers");
    };
    if !spec.e2ee {
        return bad("Model does not support E2EE");
    }
    if algo != "ecdsa" {
        return bad("Unsupported signing algorithm");
    }
    let Ok(client_key) = codec::parse_public_key(client) else {
        return bad("Invalid public key");
    };
    let enclave = state.model_key(model).expect("e2ee models have keys");
    if codec::parse_public_key(model_pub).ok() != Some(enclave.public_key()) {
        return bad("Model public key does not match the enclave key");
    }
    if body.get("stream") != Some(&Value::Bool(true)) {
        return bad("E2EE requires streaming");
    }
    if body.get("tools").is_some_and(|t| !t.is_null()) {
        return bad("Function calling is not supported with E2EE");
    }
    let vp = body.get("venice_parameters");
    let vp_get = |k: &str| vp.and_then(|v| v.get(k));
    if vp_get("enable_web_search").is_some_and(|v| v != "off" && v != &Value::Bool(false)) {
        return bad("Web search is not supported with E2EE");
    }
    if vp_get("include_venice_system_prompt") == Some(&Value::Bool(true)) {
        return bad("Venice system prompt is not supported with E2EE");
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return bad("messages is required");
    };
    let mut plain = Vec::with_capacity(messages.len());
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").and_then(Value::as_str).unwrap_or_default();
        let must_encrypt = role == "user" || role == "system";
        if must_encrypt && !content.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("Encrypted field is not valid hex");
        }
        if state.bench.is_some() {
            // The benchmark upstream checks the form only (see sim/bench.rs).
            if must_encrypt && !codec::looks_packed(content) {
                return bad("Failed to decrypt field");
            }
        } else if must_encrypt || codec::looks_packed(content) {
            match enclave.decrypt_str(content) {
                Ok(text) => plain.push(text),
                Err(_) => return bad("Failed to decrypt field"),
            }
        } else {
            plain.push(content.to_string());
        }
    }
    Ok((plain, client_key))
}

async fn chat(state: &Arc<SimState>, req: Request<Incoming>) -> Response<Body> {
    let http_version = format!("{:?}", req.version());
    let headers = req.headers().clone();
    let recorded_headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            let value = if k == "authorization" {
                "<present>".into()
            } else {
                v.to_str().unwrap_or("").to_string()
            };
            (k.as_str().to_string(), value)
        })
        .collect();
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let outcome = if body.is_null() {
        Err((StatusCode::BAD_REQUEST, "Invalid JSON body"))
    } else {
        check_chat(state, &headers, &body)
    };
    let (fault, pacing, reply, responder) = {
        let mut script = state.script.lock().expect("poisoned");
        let reply = if outcome.is_ok() {
            let model = body.get("model").and_then(Value::as_str);
            let at = script
                .replies
                .iter()
                .position(|r| r.model.is_none() || r.model.as_deref() == model);
            at.and_then(|i| script.replies.remove(i))
        } else {
            None
        };
        let fault = match &script.chat_fault {
            None if outcome.is_ok() && rand::random::<f64>() < script.random_fault_rate => {
                Some(ChatFault::random())
            }
            other => other.clone(),
        };
        (fault, script.pacing, reply, script.responder)
    };
    if fault.is_some() && state.script.lock().expect("poisoned").chat_fault.is_none() {
        state.record.lock().expect("poisoned").random_faults += 1;
    }
    let status = match (&outcome, &fault) {
        (Err((s, _)), _) => *s,
        (Ok(_), Some(ChatFault::Status { status, .. })) => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        _ => StatusCode::OK,
    };
    {
        let keep = !state.script.lock().expect("poisoned").skip_chat_records;
        let mut record = state.record.lock().expect("poisoned");
        record.chats_answered += 1;
        if keep {
            record.chats.push(ChatRecord {
                http_version,
                headers: recorded_headers,
                body: body.clone(),
                decrypted: outcome.as_ref().map(|(p, _)| p.clone()).unwrap_or_default(),
                status: status.as_u16(),
            });
        }
    }
    let (plain, client_key) = match outcome {
        Ok(v) => v,
        Err((status, message)) => return error(status, message),
    };
    let previous = state
        .last_client_key
        .lock()
        .expect("poisoned")
        .replace(client_key);
    let client_key = match (&fault, previous) {
        (Some(ChatFault::AnswerToPreviousClient), Some(other)) => other,
        _ => client_key,
    };
    if let Some(ChatFault::Status {
        status,
        message,
        retry_after,
    }) = &fault
    {
        let mut resp = error(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            message,
        );
        if let Some(ra) = retry_after {
            resp.headers_mut()
                .insert("retry-after", ra.parse().expect("valid header"));
        }
        return resp;
    }
    if let Some(ChatFault::Stall {
        after_chunks: None,
        duration,
    }) = &fault
    {
        tokio::time::sleep(*duration).await;
    }
    if let Some(bench) = &state.bench {
        let client_hex = headers
            .get(HEADER_CLIENT_PUB_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let events = bench.events(client_hex, &client_key, model);
        return sse(replay(events, pacing, include_usage(&body)));
    }
    let mut reply = reply.unwrap_or_else(|| Reply {
        content: unscripted(responder, &body, &plain),
        reasoning: None,
        model: None,
    });
    let stop_reason = apply_stop(&mut reply.content, &body);
    let id = format!("chatcmpl-{:024x}", rand::random::<u128>() >> 32);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (layout, mut receipt_fault, bodies, forms, hide_receipt_id) = {
        let script = state.script.lock().expect("poisoned");
        (
            script.attestation_layout,
            script.receipt_fault,
            script.receipt_bodies,
            script.aci_forms,
            script.hide_receipt_id,
        )
    };
    let mut receipt_id = format!("rcpt-{:016x}", rand::random::<u64>());
    // A relabelling hop: the first answer is left alone, every later one is shown under its
    // ids (its own receipt, kept under its own ids, says the upstream was not verified).
    let mut shown = (id.clone(), receipt_id.clone());
    if receipt_fault == Some(ReceiptFault::Relabelled) {
        let mut first = state.relabelled_as.lock().expect("poisoned");
        match first.as_ref() {
            Some(f) => shown = f.clone(),
            None => {
                *first = Some(shown.clone());
                receipt_fault = None;
            }
        }
    }
    // An ACI gateway hashes what it received and what it sends, and signs a receipt.
    let receipt = state
        .model_key(&model)
        .filter(|_| layout.is_aci())
        .map(|key| ReceiptPlan {
            state: state.clone(),
            receipt_id: std::mem::take(&mut receipt_id),
            chat_id: id.clone(),
            key,
            request: sha2::Sha256::digest(&bytes).into(),
            fault: receipt_fault,
            bodies,
            forms,
        });
    let receipt_id = receipt
        .as_ref()
        .filter(|_| !hide_receipt_id)
        .map(|_| shown.1.clone());
    let id = shown.0;
    let include_usage = include_usage(&body);
    let prompt_tokens = plain.iter().map(|p| p.len() / 4 + 1).sum::<usize>();
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    tokio::spawn(stream_reply(Stream {
        tx,
        client_key: codec::Recipient::new(&client_key),
        reply,
        fault,
        pacing,
        include_usage,
        prompt_tokens,
        max_tokens: max_tokens(&body),
        stop_reason,
        model,
        id,
        receipt,
    }));
    let mut resp = sse(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    if let Some(r) = receipt_id {
        resp.headers_mut()
            .insert("x-receipt-id", r.parse().expect("valid header"));
    }
    resp
}

/// What a stream needs to sign its receipt when it ends.
struct ReceiptPlan {
    state: Arc<SimState>,
    receipt_id: String,
    /// The answer's own id (a relabelling hop may show another).
    chat_id: String,
    key: Arc<super::ModelKey>,
    request: [u8; 32],
    fault: Option<ReceiptFault>,
    bodies: super::aci::ReceiptBodies,
    forms: super::aci::Forms,
}

type Chunk = Result<Frame<Bytes>, std::io::Error>;

fn sse(stream: impl futures_util::Stream<Item = Chunk> + Send + Sync + 'static) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("valid response")
}

/// The benchmark upstream's answer: prebuilt events, paced like any other.
fn replay(
    events: Arc<super::bench::Events>,
    pacing: super::Pacing,
    include_usage: bool,
) -> impl futures_util::Stream<Item = Chunk> {
    let gap = (pacing.tokens_per_second > 0.0)
        .then(|| Duration::from_secs_f64(1.0 / pacing.tokens_per_second));
    futures_util::stream::unfold(0usize, move |i| {
        let events = events.clone();
        async move {
            let n = events.chunks.len();
            let bytes = match i {
                0 => events.head.clone(),
                i if i <= n => {
                    let wait = if i == 1 { Some(pacing.ttft) } else { gap };
                    if let Some(wait) = wait.filter(|w| !w.is_zero()) {
                        tokio::time::sleep(wait).await;
                    }
                    events.chunks[i - 1].clone()
                }
                i if i == n + 1 && include_usage => events.tail.clone(),
                i if i == n + 1 => events.tail_without_usage.clone(),
                _ => return None,
            };
            Some((Ok(Frame::data(bytes)), i + 1))
        }
    })
}

/// vLLM's `stop`: the reply ends before the first stop string it holds, which is then the
/// chunk's `stop_reason`.
fn apply_stop(content: &mut String, body: &Value) -> Option<String> {
    let stops: Vec<&str> = match body.get("stop") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let (at, stop) = stops
        .into_iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| content.find(s).map(|at| (at, s)))
        .min_by_key(|(at, _)| *at)?;
    content.truncate(at);
    Some(stop.to_string())
}

/// The completion-token limit: generation stops there with `finish_reason: "length"`.
fn max_tokens(body: &Value) -> Option<usize> {
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|f| body.get(*f).and_then(Value::as_u64))
        .map(|n| n as usize)
}

fn include_usage(body: &Value) -> bool {
    body.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The answer to an unscripted request: what the responder says, else the last user message.
fn unscripted(responder: super::responder::Responder, body: &Value, plain: &[String]) -> String {
    if responder == super::responder::Responder::Agent {
        let roles = body
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| m.get("role").and_then(Value::as_str).unwrap_or_default());
        let conversation: Vec<(&str, &str)> = roles.zip(plain.iter().map(String::as_str)).collect();
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(said) = super::responder::agent_reply(model, &conversation) {
            return said;
        }
    }
    last_user(body, plain)
}

fn last_user(body: &Value, plain: &[String]) -> String {
    let messages = body.get("messages").and_then(Value::as_array);
    messages
        .and_then(|ms| {
            ms.iter()
                .zip(plain)
                .rev()
                .find(|(m, _)| m.get("role").and_then(Value::as_str) == Some("user"))
                .map(|(_, p)| p.clone())
        })
        .unwrap_or_default()
}

struct Stream {
    tx: mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    client_key: codec::Recipient,
    reply: Reply,
    fault: Option<ChatFault>,
    pacing: super::Pacing,
    include_usage: bool,
    prompt_tokens: usize,
    max_tokens: Option<usize>,
    stop_reason: Option<String>,
    model: String,
    id: String,
    receipt: Option<ReceiptPlan>,
}

/// Splits text into word-sized tokens that keep their whitespace, so joining restores it.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && i > start {
            out.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

async fn stream_reply(s: Stream) {
    let id = &s.id;
    // Every byte sent, hashed as the gateway's `response.returned` covers it.
    let hashed = std::sync::Mutex::new(sha2::Sha256::new());
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let event = |choices: Value, usage: Option<Value>| {
        let mut v = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": s.model, "choices": choices});
        if let Some(u) = usage {
            v["usage"] = u;
        }
        Bytes::from(format!("data: {v}\n\n"))
    };
    let send = |bytes: Bytes| {
        hashed.lock().expect("poisoned").update(&bytes);
        s.tx.send(Ok(Frame::data(bytes)))
    };
    if send(event(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
        None,
    ))
    .await
    .is_err()
    {
        return;
    }
    if !s.pacing.ttft.is_zero() {
        tokio::time::sleep(s.pacing.ttft).await;
    }
    let gap = (s.pacing.tokens_per_second > 0.0)
        .then(|| Duration::from_secs_f64(1.0 / s.pacing.tokens_per_second));
    let reasoning = s.reply.reasoning.as_deref().map(tokens).unwrap_or_default();
    let content = tokens(&s.reply.content);
    let pieces = reasoning
        .iter()
        .map(|t| ("reasoning_content", *t))
        .chain(content.iter().map(|t| ("content", *t)));
    let mut sent = 0usize;
    let mut finish =
        json!({"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": s.stop_reason});
    for (field, text) in pieces {
        if s.max_tokens == Some(sent) {
            finish =
                json!({"index": 0, "delta": {}, "finish_reason": "length", "stop_reason": null});
            break;
        }
        match &s.fault {
            Some(ChatFault::Drop { after_chunks }) if sent == *after_chunks => {
                let _ =
                    s.tx.send(Err(std::io::Error::other("simulated connection drop")))
                        .await;
                return;
            }
            Some(ChatFault::Stall {
                after_chunks: Some(n),
                duration,
            }) if sent == *n => tokio::time::sleep(*duration).await,
            Some(ChatFault::StreamError {
                after_chunks,
                message,
            }) if sent == *after_chunks => {
                let _ = send(Bytes::from(format!(
                    "data: {}\n\n",
                    json!({"error": {"message": message}})
                )))
                .await;
                return;
            }
            _ => {}
        }
        let value = match &s.fault {
            Some(ChatFault::Plaintext { at_chunk }) if sent == *at_chunk => text.to_string(),
            Some(ChatFault::Tamper { at_chunk }) if sent == *at_chunk => {
                let mut packed = codec::encrypt(&s.client_key, text.as_bytes()).into_bytes();
                let i = packed.len() - 20;
                packed[i] = if packed[i] == b'0' { b'1' } else { b'0' };
                String::from_utf8(packed).expect("hex")
            }
            _ => codec::encrypt(&s.client_key, text.as_bytes()),
        };
        if let Some(gap) = gap {
            if sent > 0 {
                tokio::time::sleep(gap).await;
            }
        }
        if send(event(
            json!([{"index": 0, "delta": {field: value}, "finish_reason": null}]),
            None,
        ))
        .await
        .is_err()
        {
            return;
        }
        sent += 1;
    }
    let _ = send(event(json!([finish]), None)).await;
    if s.include_usage {
        let usage = json!({"prompt_tokens": s.prompt_tokens, "completion_tokens": sent, "total_tokens": s.prompt_tokens + sent});
        let _ = send(event(json!([]), Some(usage))).await;
    }
    let done = Bytes::from_static(b"data: [DONE]\n\n");
    if let Some(plan) = &s.receipt {
        // The receipt is ready before the last byte leaves, as a finalized receipt is.
        let mut h = hashed.lock().expect("poisoned").clone();
        h.update(&done);
        plan.state.gateway.record(&Exchange {
            model: &s.model,
            keyset: plan.state.gateway_keyset(None, None),
            chat_id: &plan.chat_id,
            receipt_id: &plan.receipt_id,
            request: plan.request,
            response: h.finalize().into(),
            fault: plan.fault,
            bodies: plan.bodies,
            forms: plan.forms,
            countersigner: &plan.key.signer,
        });
    }
    let _ = send(done).await;
}
