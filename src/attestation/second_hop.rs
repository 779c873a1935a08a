//! The second hop, read from a verified attested session: the upstream's own ACI report the
//! session carries inline (the bytes the gateway's verifier consumed), checked by the proxy
//! itself rather than taken on the gateway's word. Pure: the quote's signature and TCB are
//! checked by the caller (Intel DCAP), everything else here.

use super::aci::{self, jcs, AciError, Keyset};
use super::evidence::workload;
use super::quote::{self, TdReport};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The upstream's report, read.
pub(crate) struct Upstream {
    pub(crate) keyset: Keyset,
    pub(crate) raw_quote: Vec<u8>,
    pub(crate) facts: Facts,
}

/// What the proxy established of the upstream beyond its quote's signature, and what it
/// could not, as reported.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Facts {
    /// The proxy recomputed the statement its quote binds: the keyset (and so the TLS keys
    /// it lists) is this quote's. Without it, the quote is genuine and the keyset is only
    /// the report's word.
    pub(crate) keyset_bound: bool,
    pub(crate) established: Vec<String>,
    pub(crate) unproven: Vec<String>,
}

/// Reads the session evidence as an ACI report and checks what needs no network: the keyset
/// and its restated digest, REPORTDATA, the event log against the RTMRs and the compose
/// against MRCONFIGID (when the report carries them), and the DEBUG bit.
pub(crate) fn read(evidence: &[u8]) -> Result<Upstream, AciError> {
    let raw: Value = serde_json::from_slice(evidence).map_err(|_| {
        AciError::Malformed("the session's evidence is not an ACI report (not JSON)".into())
    })?;
    if raw.get("api_version").and_then(Value::as_str) != Some(aci::API_VERSION) {
        return Err(AciError::Malformed(
            "the session's evidence is not an aci/1 report".into(),
        ));
    }
    let keyset_value = raw.pointer("/attestation/workload_keyset").ok_or_else(|| {
        AciError::Malformed("the upstream's report has no workload_keyset".into())
    })?;
    let keyset = Keyset::parse(keyset_value)?;
    if let Some(restated) = raw.get("workload_keyset_digest").and_then(Value::as_str) {
        if !restated.trim().eq_ignore_ascii_case(&keyset.digest) {
            return Err(AciError::Mismatch(
                "the upstream's report restates another keyset digest".into(),
            ));
        }
    }
    let quote_text = raw
        .pointer("/attestation/evidence/quote")
        .and_then(Value::as_str)
        .ok_or_else(|| AciError::Malformed("the upstream's report has no quote".into()))?;
    let raw_quote =
        quote::decode_quote_text(quote_text).map_err(|e| AciError::Malformed(e.to_string()))?;
    let td = quote::parse(&raw_quote).map_err(|e| AciError::Malformed(e.to_string()))?;
    if td.debug() {
        return Err(AciError::Unsupported(
            "the upstream's quote is of a DEBUG trust domain".into(),
        ));
    }
    let mut facts = Facts::default();
    facts.statement(&raw, keyset_value, &keyset.digest, &td)?;
    match workload::find_event_log(&raw) {
        Some(Ok(events)) => {
            workload::check_rtmrs(&td, &events)
                .map_err(|e| AciError::Mismatch(format!("the upstream's {e}")))?;
            facts
                .established
                .push("its event log replays to its RTMRs".into());
        }
        Some(Err(e)) => {
            return Err(AciError::Malformed(format!(
                "the upstream's event log: {e}"
            )))
        }
        None => facts
            .unproven
            .push("its boot events (the report carries no event log)".into()),
    }
    match raw
        .pointer("/attestation/evidence/app_compose")
        .and_then(Value::as_str)
    {
        Some(compose) => {
            workload::check_mr_config_id(&td, compose)
                .map_err(|e| AciError::Mismatch(format!("the upstream's {e}")))?;
            facts
                .established
                .push("MRCONFIGID binds the app compose it serves".into());
        }
        None => facts
            .unproven
            .push("what it runs (the report carries no app compose)".into()),
    }
    Ok(Upstream {
        keyset,
        raw_quote,
        facts,
    })
}

impl Facts {
    /// REPORTDATA against the statements the proxy can rebuild: the gateway fetched the
    /// report with its own nonce and publishes none, so only the unchallenged forms (nonce
    /// `null`) can be recomputed; otherwise the binding is the gateway's check, not ours.
    fn statement(
        &mut self,
        raw: &Value,
        keyset: &Value,
        digest: &str,
        td: &TdReport,
    ) -> Result<(), AciError> {
        let (head, tail) = td.report_data.split_at(32);
        if tail.iter().any(|b| *b != 0) {
            return Err(AciError::Mismatch(
                "the upstream's REPORTDATA second half is not zero".into(),
            ));
        }
        let restated = raw
            .pointer("/attestation/report_data")
            .and_then(Value::as_str);
        if restated.is_some_and(|r| !hex::encode(head).eq_ignore_ascii_case(r.trim())) {
            return Err(AciError::Mismatch(
                "the upstream's report restates another report_data than its quote's".into(),
            ));
        }
        // The nonce it was bound with, where the report names one; else only the unchallenged
        // form (`nonce: null`) can be rebuilt.
        let echoed = [
            "/nonce",
            "/attestation/nonce",
            "/attestation/freshness/nonce",
        ]
        .iter()
        .find_map(|p| raw.pointer(p).and_then(Value::as_str));
        let identity = keyset.pointer("/workload_identity/public_key");
        let bound_with = |nonce: Value| {
            let spec = format!(
                "{{\"keyset_digest\":\"{digest}\",\"nonce\":{nonce},\"purpose\":\"aci.report_data.v1\"}}"
            );
            let draft = identity.map(|identity| {
                jcs::canonical(&serde_json::json!({
                    "purpose": "aci.report_data.v1",
                    "workload_id": jcs::digest(identity),
                    "workload_keyset_digest": digest,
                    "nonce": nonce,
                }))
            });
            head == Sha256::digest(spec.as_bytes()).as_slice()
                || draft.is_some_and(|d| head == Sha256::digest(d).as_slice())
        };
        if bound_with(Value::Null) {
            self.keyset_bound = true;
            self.established
                .push("its quote binds its keyset (unchallenged form: no freshness)".into());
        } else if echoed.is_some_and(|n| bound_with(Value::String(n.to_string()))) {
            self.keyset_bound = true;
            self.established.push(
                "its quote binds its keyset, with the nonce its report names (how fresh that nonce is, is the gateway's check)".into(),
            );
        } else {
            self.unproven.push(
                "that its quote binds its keyset, and how fresh it is: the gateway's nonce is not published, so the statement cannot be recomputed".into(),
            );
        }
        Ok(())
    }
}

/// Every TLS key the gateway bound the channel to must be listed for the host it dialled
/// in the upstream's keyset: otherwise a genuine report of another machine passes.
pub(crate) fn channel_bound(tls: &[(String, String)], keyset: &Keyset) -> Result<usize, AciError> {
    for (origin, spki) in tls {
        let host = origin
            .split_once("://")
            .map_or(origin.as_str(), |(_, rest)| rest)
            .split(['/', '?'])
            .next()
            .unwrap_or_default();
        if !keyset.lists_tls_key(spki, host) {
            return Err(AciError::Unsupported(format!(
                "the TLS key the gateway bound for {origin} ({spki}) is not in the upstream's attested keyset"
            )));
        }
    }
    Ok(tls.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keyset() -> Value {
        json!({"not_after": 4_000_000_000u64, "receipt_signing_keys": [], "e2ee_public_keys": [],
            "tls_public_keys": [{"spki_sha256": "AB".repeat(32), "domain": "up.example.com"},
                                {"spki_sha256": "cd".repeat(32)}]})
    }

    #[test]
    fn the_channel_must_be_a_key_the_upstream_attested_for_that_host() {
        let k = Keyset::parse(&keyset()).unwrap();
        let bound = |origin: &str, spki: &str| channel_bound(&[(origin.into(), spki.into())], &k);
        assert_eq!(bound("https://up.example.com", &"ab".repeat(32)), Ok(1));
        // A port is part of the host a domain-scoped key is listed for.
        assert!(bound("https://up.example.com:443/v1", &"ab".repeat(32)).is_err());
        assert!(bound("https://other.example.com", &"ab".repeat(32)).is_err());
        assert_eq!(bound("https://any.example.com", &"cd".repeat(32)), Ok(1));
        assert!(bound("https://up.example.com", &"ef".repeat(32))
            .unwrap_err()
            .to_string()
            .contains("not in the upstream's attested keyset"));
    }

    /// The real capture's quote with REPORTDATA replaced, in an upstream report.
    fn report(report_data: [u8; 64], keyset: Value) -> Value {
        let q = crate::attestation::aci::anchor::tests::quote_with(report_data);
        json!({"api_version": "aci/1", "attestation": {"workload_keyset": keyset,
            "evidence": {"quote": q}}})
    }

    #[test]
    fn what_can_be_recomputed_is_and_the_rest_is_said() {
        let digest = jcs::digest(&keyset());
        // Bound with the gateway's own (unpublished) nonce: genuine, but not recomputable.
        let mut rd = [0u8; 64];
        rd[..32].copy_from_slice(&aci::report_data(&digest, &[9; 32])[..32]);
        let u = read(report(rd, keyset()).to_string().as_bytes()).unwrap();
        assert!(u
            .facts
            .unproven
            .iter()
            .any(|f| f.contains("nonce is not published")));
        assert!(!u.facts.keyset_bound);
        // The same report naming the nonce it was bound with: the binding is recomputed.
        let mut named = report(rd, keyset());
        named["nonce"] = json!(hex::encode([9u8; 32]));
        let u = read(named.to_string().as_bytes()).unwrap();
        assert!(u.facts.keyset_bound, "{:?}", u.facts);
        named["nonce"] = json!(hex::encode([8u8; 32]));
        assert!(
            !read(named.to_string().as_bytes())
                .unwrap()
                .facts
                .keyset_bound
        );
        assert!(u.facts.unproven.iter().any(|f| f.contains("event log")));
        // The unchallenged form is recomputed.
        let spec_null = format!(
            "{{\"keyset_digest\":\"{digest}\",\"nonce\":null,\"purpose\":\"aci.report_data.v1\"}}"
        );
        let mut rd = [0u8; 64];
        rd[..32].copy_from_slice(&Sha256::digest(spec_null.as_bytes()));
        let u = read(report(rd, keyset()).to_string().as_bytes()).unwrap();
        assert!(u
            .facts
            .established
            .iter()
            .any(|f| f.contains("unchallenged")));
        assert!(u.facts.keyset_bound);
        // A restated digest of another keyset, and evidence that is not a report, fail.
        let mut r = report(rd, keyset());
        r["workload_keyset_digest"] = json!(format!("sha256:{}", "00".repeat(32)));
        assert!(read(r.to_string().as_bytes()).is_err());
        assert!(read(b"example-evidence").is_err());
        // An app compose MRCONFIGID does not bind.
        let mut r = report(rd, keyset());
        r["attestation"]["evidence"]["app_compose"] = json!("{}");
        let e = read(r.to_string().as_bytes()).err().unwrap();
        assert!(e.to_string().contains("MRCONFIGID"));
        assert!(matches!(e, AciError::Mismatch(_)), "{e:?}");
    }
}
