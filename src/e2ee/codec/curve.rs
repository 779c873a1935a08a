//! The codec's two expensive operations — a key pair from a secret, and the ECDH shared
//! x-coordinate — behind one interface, with two backends: RustCrypto's `k256` and
//! libsecp256k1 (the `secp256k1` crate, cargo feature `libsecp256k1`, on by default because it
//! measured faster: see docs/BENCHMARKS.md). Everything else in the codec is shared.
//!
//! Keys are validated once when they enter (`parse_public`, `public`, `secret`); the ECDH
//! itself takes them as they are.

use super::CodecError;
use zeroize::Zeroizing;

pub trait Curve: 'static {
    /// A secret scalar, erased on drop.
    type Secret: Send + Sync;
    /// A point known to be on the curve.
    type Public: Clone + Send + Sync;

    fn name() -> &'static str;
    /// None for zero or a value not below the group order.
    fn secret(bytes: &[u8; 32]) -> Option<Self::Secret>;
    /// The uncompressed SEC1 public key of a secret.
    fn public_of(secret: &Self::Secret) -> [u8; 65];
    /// A point from SEC1 bytes (compressed or uncompressed), validated.
    fn parse_public(sec1: &[u8]) -> Result<Self::Public, CodecError>;
    /// The x-coordinate of `secret · peer`.
    fn shared_x(secret: &Self::Secret, peer: &Self::Public) -> Zeroizing<[u8; 32]>;

    /// A fresh random secret (the loop runs again with probability ~2⁻¹²⁸).
    fn random_secret() -> Self::Secret {
        use rand::RngCore;
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(bytes.as_mut());
            if let Some(s) = Self::secret(&bytes) {
                return s;
            }
        }
    }
}

/// RustCrypto's pure-Rust `k256`.
pub struct K256;

impl Curve for K256 {
    type Secret = k256::SecretKey;
    type Public = k256::PublicKey;

    fn name() -> &'static str {
        "k256"
    }

    fn secret(bytes: &[u8; 32]) -> Option<Self::Secret> {
        k256::SecretKey::from_slice(bytes).ok()
    }

    fn public_of(secret: &Self::Secret) -> [u8; 65] {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .try_into()
            .expect("an uncompressed point is 65 bytes")
    }

    fn parse_public(sec1: &[u8]) -> Result<Self::Public, CodecError> {
        k256::PublicKey::from_sec1_bytes(sec1).map_err(|_| CodecError::BadEphemeralKey)
    }

    fn shared_x(secret: &Self::Secret, peer: &Self::Public) -> Zeroizing<[u8; 32]> {
        let shared = k256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
        Zeroizing::new((*shared.raw_secret_bytes()).into())
    }
}

/// libsecp256k1 through the `secp256k1` crate.
#[cfg(feature = "libsecp256k1")]
pub struct Libsecp;

/// A libsecp256k1 secret, overwritten on drop (the crate's type is `Copy` and does not).
#[cfg(feature = "libsecp256k1")]
pub struct LibsecpSecret(secp256k1::SecretKey);

#[cfg(feature = "libsecp256k1")]
impl Drop for LibsecpSecret {
    fn drop(&mut self) {
        self.0.non_secure_erase();
    }
}

#[cfg(feature = "libsecp256k1")]
static CONTEXT: once_cell::sync::Lazy<secp256k1::Secp256k1<secp256k1::SignOnly>> =
    once_cell::sync::Lazy::new(secp256k1::Secp256k1::signing_only);

#[cfg(feature = "libsecp256k1")]
impl Curve for Libsecp {
    type Secret = LibsecpSecret;
    type Public = secp256k1::PublicKey;

    fn name() -> &'static str {
        "libsecp256k1"
    }

    fn secret(bytes: &[u8; 32]) -> Option<Self::Secret> {
        secp256k1::SecretKey::from_byte_array(*bytes)
            .ok()
            .map(LibsecpSecret)
    }

    fn public_of(secret: &Self::Secret) -> [u8; 65] {
        secp256k1::PublicKey::from_secret_key(&CONTEXT, &secret.0).serialize_uncompressed()
    }

    fn parse_public(sec1: &[u8]) -> Result<Self::Public, CodecError> {
        secp256k1::PublicKey::from_slice(sec1).map_err(|_| CodecError::BadEphemeralKey)
    }

    fn shared_x(secret: &Self::Secret, peer: &Self::Public) -> Zeroizing<[u8; 32]> {
        let mut point = secp256k1::ecdh::shared_secret_point(peer, &secret.0);
        let mut x = Zeroizing::new([0u8; 32]);
        x.copy_from_slice(&point[..32]);
        zeroize::Zeroize::zeroize(&mut point);
        x
    }
}

/// The backend the proxy uses.
#[cfg(feature = "libsecp256k1")]
pub(crate) type Active = Libsecp;
#[cfg(not(feature = "libsecp256k1"))]
pub(crate) type Active = K256;

#[cfg(test)]
mod tests {
    use super::*;

    /// Both backends agree on public keys and shared secrets, both ways round.
    fn agree<A: Curve, B: Curve>() {
        for _ in 0..16 {
            let a = A::random_secret();
            let b_bytes: [u8; 32] = rand::random();
            let Some(b) = B::secret(&b_bytes) else {
                continue;
            };
            let a_pub = A::public_of(&a);
            let b_pub = B::public_of(&b);
            let x1 = A::shared_x(&a, &A::parse_public(&b_pub).unwrap());
            let x2 = B::shared_x(&b, &B::parse_public(&a_pub).unwrap());
            assert_eq!(*x1, *x2, "{} vs {}", A::name(), B::name());
            assert_eq!(K256::public_of(&K256::secret(&b_bytes).unwrap()), b_pub);
        }
        assert!(A::secret(&[0; 32]).is_none());
        assert!(A::secret(&[0xff; 32]).is_none(), "above the group order");
        assert!(A::parse_public(&[4; 65]).is_err(), "not on the curve");
    }

    #[test]
    fn the_backends_agree() {
        agree::<K256, K256>();
        agree::<Active, K256>();
        agree::<K256, Active>();
    }
}
