//! The trust anchors compiled into the binary: Intel's SGX root CA and NVIDIA's device
//! identity root CA (public certificates, from `conf/trust-roots/`).

use super::EvidenceError;
use crate::attestation::framing::pem_to_der;
use x509_cert::Certificate;

pub(crate) const INTEL_SGX_ROOT_CA: &str =
    include_str!("../../../conf/trust-roots/intel_sgx_root_ca.pem");
pub(crate) const NVIDIA_DEVICE_ROOT_CA: &str =
    include_str!("../../../conf/trust-roots/nvidia_device_identity_root_ca.pem");

pub struct Roots {
    pub intel_der: Vec<u8>,
    pub nvidia: Certificate,
}

pub fn pinned() -> Result<Roots, EvidenceError> {
    Ok(Roots {
        intel_der: pem_to_der(INTEL_SGX_ROOT_CA)?,
        nvidia: super::nvidia::parse_root(NVIDIA_DEVICE_ROOT_CA)?,
    })
}
