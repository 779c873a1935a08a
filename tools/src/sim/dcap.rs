//! A simulated Intel PKI and PCS, so the simulator's quotes pass real DCAP verification:
//! a root CA standing in for Intel's, a PCK Platform CA, a PCK certificate, a TCB signing
//! certificate, CRLs, and TCB info / QE identity signed by it. The quote, QE report and
//! collateral contents come from a real captured TDX quote (so TCB matching is the real
//! one); every signature and certificate is the simulator's own. The proxy trusts this root
//! only when configured to (demo, tests), and says so loudly.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension, DnType,
    IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use sha2::{Digest, Sha256};
use venice_e2ee_proxy::attestation::quote::{BODY_LEN, HEADER_LEN};

const TEMPLATE_QUOTE: &str = include_str!("dcap_template/quote.hex");
const TEMPLATE_TCB_INFO: &str = include_str!("dcap_template/tcb_info.json");
const TEMPLATE_QE_IDENTITY: &str = include_str!("dcap_template/qe_identity.json");
/// Intel's SGX extension in PCK certificates.
const SGX_EXTENSION_OID: &[u64] = &[1, 2, 840, 113_741, 1, 13, 1];
const QE_REPORT_LEN: usize = 384;

pub struct IntelPki {
    pub root_pem: String,
    template: Vec<u8>,
    pck_chain_pem: String,
    pck_key: EcdsaKeyPair,
    pub root_crl: Vec<u8>,
    pub pck_crl: Vec<u8>,
    pub pck_crl_chain: String,
    pub tcb_chain: String,
    /// PCS bodies: `{"tcbInfo": …, "signature": …}` and `{"enclaveIdentity": …, …}`.
    pub tcb_info_body: String,
    pub qe_identity_body: String,
}

fn signer(key: &KeyPair) -> Result<EcdsaKeyPair, String> {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &key.serialize_der(),
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| e.to_string())
}

fn sign(key: &EcdsaKeyPair, msg: &[u8]) -> Vec<u8> {
    key.sign(&ring::rand::SystemRandom::new(), msg)
        .expect("ECDSA signing")
        .as_ref()
        .to_vec()
}

fn ca(name: &str) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.distinguished_name
        .push(DnType::OrganizationName, "venice-e2ee-proxy simulation");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// The SGX extension of the template quote's PCK certificate (FMSPC, TCB SVNs, PCE id…).
fn template_sgx_extension(quote: &[u8]) -> Result<Vec<u8>, String> {
    let chain = dcap_qvl::quote::Quote::parse(quote)
        .map_err(|e| e.to_string())?
        .raw_cert_chain()
        .map_err(|e| e.to_string())?
        .to_vec();
    let end = b"-----END CERTIFICATE-----";
    let at = chain
        .windows(end.len())
        .position(|w| w == end)
        .ok_or("no PCK certificate")?
        + end.len();
    let leaf = x509_cert::Certificate::load_pem_chain(&chain[..at]).map_err(|e| e.to_string())?;
    let oid = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1");
    let ext = leaf[0]
        .tbs_certificate()
        .extensions()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == oid))
        .ok_or("template PCK certificate has no SGX extension")?;
    Ok(ext.extn_value.as_bytes().to_vec())
}

fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Re-dates a signed collateral object (issued a day ago, valid for 30 days) and signs it.
fn signed_body(template: &str, key: &str, tcb_signer: &EcdsaKeyPair, now: u64) -> String {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(template).expect("template JSON");
    v.insert("issueDate".into(), json!(rfc3339(now - 86_400)));
    v.insert("nextUpdate".into(), json!(rfc3339(now + 30 * 86_400)));
    let text = serde_json::to_string(&v).expect("serializes");
    let signature = hex::encode(sign(tcb_signer, text.as_bytes()));
    format!("{{\"{key}\":{text},\"signature\":\"{signature}\"}}")
}

impl IntelPki {
    pub fn generate() -> Result<IntelPki, String> {
        let e = |e: rcgen::Error| e.to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let template = hex::decode(TEMPLATE_QUOTE.trim()).map_err(|e| e.to_string())?;

        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(e)?;
        let root = ca("Simulated Intel SGX Root CA")?
            .self_signed(&root_key)
            .map_err(e)?;
        let platform_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(e)?;
        let platform = ca("Simulated Intel SGX PCK Platform CA")?
            .signed_by(&platform_key, &root, &root_key)
            .map_err(e)?;

        let mut pck = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        pck.distinguished_name
            .push(DnType::CommonName, "Simulated Intel SGX PCK Certificate");
        pck.custom_extensions = vec![CustomExtension::from_oid_content(
            SGX_EXTENSION_OID,
            template_sgx_extension(&template)?,
        )];
        pck.use_authority_key_identifier_extension = true;
        let pck_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(e)?;
        let pck_cert = pck
            .signed_by(&pck_key, &platform, &platform_key)
            .map_err(e)?;

        let mut tcb = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        tcb.distinguished_name
            .push(DnType::CommonName, "Simulated Intel SGX TCB Signing");
        tcb.use_authority_key_identifier_extension = true;
        let tcb_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(e)?;
        let tcb_cert = tcb.signed_by(&tcb_key, &root, &root_key).map_err(e)?;
        let tcb_signer = signer(&tcb_key)?;

        let crl = |number: u64| CertificateRevocationListParams {
            this_update: time::OffsetDateTime::from_unix_timestamp((now - 86_400) as i64)
                .expect("time"),
            next_update: time::OffsetDateTime::from_unix_timestamp((now + 365 * 86_400) as i64)
                .expect("time"),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: Vec::new(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let root_crl = crl(1).signed_by(&root, &root_key).map_err(e)?;
        let pck_crl = crl(1).signed_by(&platform, &platform_key).map_err(e)?;

        Ok(IntelPki {
            root_pem: root.pem(),
            pck_chain_pem: format!("{}{}{}", pck_cert.pem(), platform.pem(), root.pem()),
            pck_key: signer(&pck_key)?,
            root_crl: root_crl.der().to_vec(),
            pck_crl: pck_crl.der().to_vec(),
            pck_crl_chain: format!("{}{}", platform.pem(), root.pem()),
            tcb_chain: format!("{}{}", tcb_cert.pem(), root.pem()),
            tcb_info_body: signed_body(TEMPLATE_TCB_INFO, "tcbInfo", &tcb_signer, now),
            qe_identity_body: signed_body(
                TEMPLATE_QE_IDENTITY,
                "enclaveIdentity",
                &tcb_signer,
                now,
            ),
            template,
        })
    }

    /// A TDX v4 quote over `body` (the 584-byte TD report): the template's header and QE
    /// report, a fresh attestation key, signatures by the simulated PCK key.
    pub fn quote(&self, body: &[u8]) -> Vec<u8> {
        assert_eq!(body.len(), BODY_LEN);
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
        let att_key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("key");
        let att_pub = &att_key.public_key().as_ref()[1..];
        let qe_auth = Sha256::digest(b"venice-e2ee-proxy simulated QE").to_vec();

        let mut qe_report =
            self.template[HEADER_LEN + BODY_LEN + 4 + 128 + 6..][..QE_REPORT_LEN].to_vec();
        let mut h = Sha256::new();
        h.update(att_pub);
        h.update(&qe_auth);
        // REPORTDATA of the QE report: sha256(attestation key ‖ QE auth data) ‖ zeros.
        qe_report[320..352].copy_from_slice(&h.finalize());
        qe_report[352..384].fill(0);
        let qe_sig = sign(&self.pck_key, &qe_report);

        let mut signed = self.template[..HEADER_LEN].to_vec();
        signed.extend_from_slice(body);
        let quote_sig = sign(&att_key, &signed);

        let chain = self.pck_chain_pem.as_bytes();
        let mut cert_data = qe_report;
        cert_data.extend_from_slice(&qe_sig);
        cert_data.extend_from_slice(&(qe_auth.len() as u16).to_le_bytes());
        cert_data.extend_from_slice(&qe_auth);
        cert_data.extend_from_slice(&5u16.to_le_bytes());
        cert_data.extend_from_slice(&(chain.len() as u32).to_le_bytes());
        cert_data.extend_from_slice(chain);

        let mut sig_data = quote_sig;
        sig_data.extend_from_slice(att_pub);
        sig_data.extend_from_slice(&6u16.to_le_bytes());
        sig_data.extend_from_slice(&(cert_data.len() as u32).to_le_bytes());
        sig_data.extend_from_slice(&cert_data);

        let mut quote = signed;
        quote.extend_from_slice(&(sig_data.len() as u32).to_le_bytes());
        quote.extend_from_slice(&sig_data);
        quote
    }

    /// The template's TD report body: real TCB SVNs and SEAM measurements, for the caller
    /// to overwrite with its own MRTD, RTMRs, MRCONFIGID and REPORTDATA.
    pub fn template_body(&self) -> Vec<u8> {
        self.template[HEADER_LEN..HEADER_LEN + BODY_LEN].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_776_995_921), "2026-04-24T01:58:41Z");
    }
}
