//! NVIDIA Remote Attestation Service (optional, by policy): the GPU evidence is submitted to
//! NRAS, and its EAT answer is verified: the overall JWT and every per-GPU JWT signed (ES384)
//! by a key from NRAS's JWKS, the per-GPU tokens matching the overall token's digests, the
//! overall result true, our nonce, and the validity window.

use super::EvidenceError;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub(crate) const NRAS_ISSUER: &str = "https://nras.attestation.nvidia.com";

fn b64url(s: &str) -> Result<Vec<u8>, EvidenceError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| "JWT part is not base64url".into())
}

/// Verifies a compact ES384 JWT against the JWKS and returns its claims.
fn verify_jwt(jwt: &str, jwks: &Value) -> Result<Value, EvidenceError> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWT".into());
    };
    let header: Value =
        serde_json::from_slice(&b64url(h)?).map_err(|e| format!("JWT header: {e}"))?;
    if header["alg"] != "ES384" {
        return Err(format!("JWT algorithm {} is not ES384", header["alg"]).into());
    }
    let kid = header["kid"].as_str().ok_or("JWT has no kid")?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .ok_or_else(|| format!("no JWKS key {kid}"))?;
    if key["crv"] != "P-384" {
        return Err("JWKS key is not P-384".into());
    }
    let mut point = vec![0x04];
    point.extend(b64url(key["x"].as_str().ok_or("JWK without x")?)?);
    point.extend(b64url(key["y"].as_str().ok_or("JWK without y")?)?);
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &point)
        .verify(format!("{h}.{p}").as_bytes(), &b64url(s)?)
        .map_err(|_| "JWT signature does not verify with NRAS's key".to_string())?;
    serde_json::from_slice(&b64url(p)?).map_err(|e| format!("JWT claims: {e}").into())
}

/// Verifies NRAS's answer (`[["JWT", overall], {"GPU-0": jwt, …}]`) for `nonce` at `now`.
pub(crate) fn verify_eat(
    answer: &Value,
    jwks: &Value,
    nonce: &[u8; 32],
    now: u64,
) -> Result<String, EvidenceError> {
    let overall = answer
        .pointer("/0/1")
        .and_then(Value::as_str)
        .ok_or("NRAS answer has no overall token")?;
    let claims = verify_jwt(overall, jwks)?;
    if claims["iss"] != NRAS_ISSUER {
        return Err(format!("token issued by {}", claims["iss"]).into());
    }
    if claims["x-nvidia-overall-att-result"] != true {
        return Err("NRAS did not accept the GPU evidence".into());
    }
    if !claims["eat_nonce"]
        .as_str()
        .is_some_and(|n| crate::attestation::framing::hex_matches(n, nonce))
    {
        return Err("the NRAS token is for another nonce".into());
    }
    let (nbf, exp) = (
        claims["nbf"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    if now < nbf || now > exp {
        return Err(format!("the NRAS token is not valid at {now} ({nbf}..{exp})").into());
    }
    let submods = claims["submods"]
        .as_object()
        .ok_or("NRAS token lists no GPUs")?;
    let gpus = answer
        .get(1)
        .and_then(Value::as_object)
        .ok_or("NRAS answer has no per-GPU tokens")?;
    for (name, digest) in submods {
        let token = gpus
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no token for {name}"))?;
        let want = digest
            .pointer("/1/1")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !hex::encode(Sha256::digest(token.as_bytes())).eq_ignore_ascii_case(want) {
            return Err(format!("{name} token does not match the overall token's digest").into());
        }
        verify_jwt(token, jwks).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(format!(
        "NRAS accepted {} GPUs for this nonce",
        submods.len()
    ))
}

/// Submits GPU evidence to NRAS; its JWKS is cached for `JWKS_TTL`.
pub(crate) struct Nras {
    http: reqwest::Client,
    url: String,
    jwks_url: String,
    jwks: std::sync::Mutex<Option<(std::time::Instant, Value)>>,
}

const JWKS_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

impl Nras {
    pub(crate) fn new(http: reqwest::Client, url: &str, jwks_url: &str) -> Self {
        Nras {
            http,
            url: url.to_string(),
            jwks_url: jwks_url.to_string(),
            jwks: std::sync::Mutex::default(),
        }
    }

    /// NRAS's answer and JWKS for this payload.
    pub(crate) async fn attest(
        &self,
        payload: &super::nvidia::Payload,
        nonce: &[u8; 32],
    ) -> Result<(Value, Value), EvidenceError> {
        // NRAS gets the evidence in the canonical encoding, whatever framing Venice used;
        // what cannot be re-encoded is sent as it came (and fails the local checks anyway).
        use crate::attestation::framing::{canonical_base64, canonical_pem_field};
        let evidence: Vec<Value> = payload
            .evidence_list
            .iter()
            .map(|g| {
                let certificate =
                    canonical_pem_field(&g.certificate).unwrap_or_else(|_| g.certificate.clone());
                let evidence =
                    canonical_base64(&g.evidence).unwrap_or_else(|_| g.evidence.clone());
                json!({"arch": g.arch.as_deref().unwrap_or("HOPPER"), "certificate": certificate, "evidence": evidence})
            })
            .collect();
        let body = json!({"nonce": hex::encode(nonce), "arch": payload.arch.as_deref().unwrap_or("HOPPER"), "evidence_list": evidence});
        let answer = self.json(self.http.post(&self.url).json(&body)).await?;
        let cached = self.jwks.lock().expect("poisoned").clone();
        let jwks = match cached {
            Some((at, jwks)) if at.elapsed() < JWKS_TTL => jwks,
            _ => {
                let jwks = self.json(self.http.get(&self.jwks_url)).await?;
                *self.jwks.lock().expect("poisoned") =
                    Some((std::time::Instant::now(), jwks.clone()));
                jwks
            }
        };
        Ok((answer, jwks))
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> Result<Value, EvidenceError> {
        let unavailable = EvidenceError::Unavailable;
        let r = req
            .send()
            .await
            .map_err(|e| unavailable(format!("NRAS: {e}")))?;
        if !r.status().is_success() {
            return Err(unavailable(format!("NRAS answered {}", r.status())));
        }
        let limit = crate::venice::client::DOCUMENT_LIMIT;
        let body = crate::venice::client::read_limited(r, limit)
            .await
            .map_err(|e| unavailable(format!("NRAS: {e}")))?
            .ok_or_else(|| EvidenceError::Invalid(format!("NRAS: more than {limit} bytes")))?;
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("NRAS: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> Value {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/capture/");
        let file = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .find(|e| {
                e.file_name().to_string_lossy().starts_with(name)
                    && e.file_name().to_string_lossy().ends_with(".body")
            })
            .unwrap();
        serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap()
    }

    fn nonce() -> [u8; 32] {
        hex::decode("ac82eb750ec4cfbb273f90d33567776bfae8657e2a43f6dff2f3adad9b86095a")
            .unwrap()
            .try_into()
            .unwrap()
    }

    const CAPTURED_AT: u64 = 1_776_995_921;

    #[test]
    fn the_captured_nras_answer_verifies() {
        let detail = verify_eat(&load("0006"), &load("0007"), &nonce(), CAPTURED_AT).unwrap();
        assert!(detail.contains("8 GPUs"), "{detail}");
    }

    /// An NRAS that cannot be asked is an outage, not a verdict on the GPUs.
    #[tokio::test]
    async fn an_unreachable_nras_is_unavailable() {
        let n = Nras::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9/attest",
            "http://127.0.0.1:9/jwks",
        );
        let payload = super::super::nvidia::parse_payload(&load("0001")["nvidia_payload"]).unwrap();
        assert!(matches!(
            n.attest(&payload, &nonce()).await,
            Err(EvidenceError::Unavailable(m)) if m.starts_with("NRAS")
        ));
    }

    #[test]
    fn nras_answers_fail_closed() {
        let (answer, jwks) = (load("0006"), load("0007"));
        assert!(verify_eat(&answer, &jwks, &[0; 32], CAPTURED_AT)
            .unwrap_err()
            .to_string()
            .contains("nonce"));
        assert!(verify_eat(&answer, &jwks, &nonce(), CAPTURED_AT + 86_400)
            .unwrap_err()
            .to_string()
            .contains("not valid"));
        let mut forged = answer.clone();
        let token = forged[0][1].as_str().unwrap().to_string();
        let (head, rest) = token.split_once('.').unwrap();
        let (payload, sig) = rest.split_once('.').unwrap();
        let mut claims: Value = serde_json::from_slice(&b64url(payload).unwrap()).unwrap();
        claims["x-nvidia-overall-att-result"] = json!(true);
        claims["eat_nonce"] = json!("00".repeat(32));
        let forged_payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        forged[0][1] = json!(format!("{head}.{forged_payload}.{sig}"));
        assert!(verify_eat(&forged, &jwks, &[0; 32], CAPTURED_AT)
            .unwrap_err()
            .to_string()
            .contains("signature"));
        let mut swapped = answer.clone();
        let gpu1 = swapped[1]["GPU-1"].clone();
        swapped[1]["GPU-0"] = gpu1;
        assert!(verify_eat(&swapped, &jwks, &nonce(), CAPTURED_AT)
            .unwrap_err()
            .to_string()
            .contains("digest"));
    }
}
