//! Intel collateral from Intel PCS (or a PCCS with the same API): TCB info and QE identity
//! for the quote's FMSPC, the PCK CRL and the root CA CRL. Cached per FMSPC and CA until the
//! collateral's `nextUpdate`.

use super::dcap::{split_signed, Collateral};
use super::EvidenceError;
use crate::attestation::unix_now as now;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use x509_cert::Certificate;

/// Collateral per (FMSPC, CA), with the Unix time it is good until.
type Cache = HashMap<(String, &'static str), (u64, Arc<Collateral>)>;

pub struct Pcs {
    http: reqwest::Client,
    base: String,
    root_crl_url: String,
    /// How long past its nextUpdate cached collateral may stand in while PCS is unreachable.
    grace: u64,
    cache: Mutex<Cache>,
}

/// Collateral for a quote, and the time to verify it at when it is stale (used within the
/// grace period while PCS cannot be reached).
pub struct Fetched {
    pub collateral: Arc<Collateral>,
    pub stale_verify_at: Option<u64>,
}

/// The quote's FMSPC and which PCK CA issued its certificate (`platform` or `processor`).
pub(crate) fn quote_platform(raw_quote: &[u8]) -> Result<(String, &'static str), EvidenceError> {
    let quote = dcap_qvl::quote::Quote::parse(raw_quote).map_err(|e| format!("quote: {e:#}"))?;
    let chain = quote
        .raw_cert_chain()
        .map_err(|e| format!("quote certification data: {e:#}"))?;
    let ext = dcap_qvl::intel::parse_pck_extension_from_pem(chain)
        .map_err(|e| format!("PCK certificate: {e:#}"))?;
    // The quote's chain may carry padding after its last certificate: read the first alone.
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let first_end = chain
        .windows(END.len())
        .position(|w| w == END)
        .ok_or("no PCK certificate in the quote")?;
    let leaf = Certificate::load_pem_chain(&chain[..first_end + END.len()])
        .ok()
        .and_then(|c| c.into_iter().next())
        .ok_or("the quote's PCK certificate does not parse")?;
    let ca = if leaf
        .tbs_certificate()
        .issuer()
        .to_string()
        .contains("Processor")
    {
        "processor"
    } else {
        "platform"
    };
    Ok((hex::encode(ext.fmspc), ca))
}

impl Pcs {
    pub fn new(
        http: reqwest::Client,
        base: &str,
        root_crl_url: &str,
        grace: std::time::Duration,
    ) -> Self {
        Pcs {
            http,
            base: base.trim_end_matches('/').to_string(),
            root_crl_url: root_crl_url.to_string(),
            grace: grace.as_secs(),
            cache: Mutex::default(),
        }
    }

    /// Collateral for a quote: cached until its `nextUpdate`, else fetched.
    pub(crate) async fn collateral(&self, raw_quote: &[u8]) -> Result<Fetched, EvidenceError> {
        self.collateral_at(raw_quote, now()).await
    }

    /// The same, as of `now` (Unix seconds). When a refetch fails, collateral past its
    /// nextUpdate by less than the grace period is still used (verified as of its last valid
    /// second); beyond that, or without a grace period, the failure stands (fail closed).
    pub async fn collateral_at(
        &self,
        raw_quote: &[u8],
        now: u64,
    ) -> Result<Fetched, EvidenceError> {
        let (fmspc, ca) = quote_platform(raw_quote)?;
        let key = (fmspc.clone(), ca);
        let cached = self.cache.lock().expect("poisoned").get(&key).cloned();
        if let Some((until, c)) = &cached {
            if now < *until {
                return Ok(Fetched {
                    collateral: c.clone(),
                    stale_verify_at: None,
                });
            }
        }
        match self.fetch(&fmspc, ca).await {
            Ok(c) => {
                let c = Arc::new(c);
                let until = c.valid_until().unwrap_or(0);
                self.cache
                    .lock()
                    .expect("poisoned")
                    .insert(key, (until, c.clone()));
                Ok(Fetched {
                    collateral: c,
                    stale_verify_at: None,
                })
            }
            Err(e) => match cached {
                Some((until, c)) if self.grace > 0 && now < until + self.grace => {
                    log::warn!("Intel collateral refresh failed ({e}); using collateral expired at {until}, within the grace period");
                    Ok(Fetched {
                        collateral: c,
                        stale_verify_at: Some(until.saturating_sub(1)),
                    })
                }
                _ => Err(e),
            },
        }
    }

    async fn get(&self, url: &str) -> Result<(reqwest::header::HeaderMap, Vec<u8>), EvidenceError> {
        let unavailable = EvidenceError::Unavailable;
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(format!("{url}: {e}")))?;
        if !r.status().is_success() {
            return Err(unavailable(format!("{url}: HTTP {}", r.status())));
        }
        let headers = r.headers().clone();
        let limit = crate::venice::client::DOCUMENT_LIMIT;
        let body = crate::venice::client::read_limited(r, limit)
            .await
            .map_err(|e| unavailable(format!("{url}: {e}")))?
            .ok_or_else(|| EvidenceError::Invalid(format!("{url}: more than {limit} bytes")))?;
        Ok((headers, body))
    }

    fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Result<String, EvidenceError> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(super::capture::percent_decode)
            .ok_or_else(|| format!("collateral response without {name}").into())
    }

    async fn fetch(&self, fmspc: &str, ca: &str) -> Result<Collateral, EvidenceError> {
        let base = &self.base;
        let (tcb_h, tcb) = self
            .get(&format!("{base}/tdx/certification/v4/tcb?fmspc={fmspc}"))
            .await?;
        let (qe_h, qe) = self
            .get(&format!("{base}/tdx/certification/v4/qe/identity"))
            .await?;
        let (crl_h, pck_crl) = self
            .get(&format!(
                "{base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der"
            ))
            .await?;
        let (_, root_ca_crl) = self.get(&self.root_crl_url).await?;
        let text =
            |b: Vec<u8>| String::from_utf8(b).map_err(|_| "collateral is not UTF-8".to_string());
        let (tcb_info, tcb_info_signature) = split_signed(&text(tcb)?, "tcbInfo")?;
        let (qe_identity, qe_identity_signature) = split_signed(&text(qe)?, "enclaveIdentity")?;
        Ok(Collateral {
            tcb_info,
            tcb_info_signature,
            tcb_info_issuer_chain: Self::header(&tcb_h, "TCB-Info-Issuer-Chain")?,
            qe_identity,
            qe_identity_signature,
            qe_identity_issuer_chain: Self::header(&qe_h, "SGX-Enclave-Identity-Issuer-Chain")?,
            pck_crl,
            pck_crl_issuer_chain: Self::header(&crl_h, "SGX-PCK-CRL-Issuer-Chain")?,
            root_ca_crl,
        })
    }
}
