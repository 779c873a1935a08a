//! The Venice E2EE field codec: secp256k1 ECDH → HKDF-SHA256 → AES-256-GCM, packed as
//! `ephemeral_pub(65) ‖ nonce(12) ‖ ciphertext ‖ tag(16)` in lowercase hex.

pub mod curve;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use curve::{Active, Curve};
use hkdf::Hkdf;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::PublicKey;
use rand::RngCore;
use sha2::Sha256;
use sha3::{Digest, Keccak256};
use std::fmt;
use zeroize::Zeroizing;

const HKDF_INFO: &[u8] = b"ecdsa_encryption";
const PUB_LEN: usize = 65;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Shortest valid packed field: an empty plaintext.
pub(crate) const MIN_PACKED_LEN: usize = PUB_LEN + NONCE_LEN + TAG_LEN;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    NotHex,
    TooShort,
    BadEphemeralKey,
    BadPublicKey,
    Authentication,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodecError::NotHex => "encrypted field is not valid hex",
            CodecError::TooShort => "encrypted field is shorter than the codec allows",
            CodecError::BadEphemeralKey => "encrypted field carries an invalid ephemeral key",
            CodecError::BadPublicKey => "invalid secp256k1 public key",
            CodecError::Authentication => "encrypted field failed authentication",
        })
    }
}

impl std::error::Error for CodecError {}

/// A secp256k1 key pair. The secret is erased on drop and never printed; the public half is
/// kept pre-encoded because it travels in every request header.
pub struct KeyPair {
    secret: <Active as Curve>::Secret,
    public: PublicKey,
    public_hex: String,
}

impl KeyPair {
    pub fn generate() -> Self {
        Self::from_secret(Active::random_secret())
    }

    /// A key pair from its 32 secret bytes (an enclave's key the simulator also signs with;
    /// the test vector's recipient).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        let bytes: &[u8; 32] = bytes.try_into().map_err(|_| CodecError::BadPublicKey)?;
        Active::secret(bytes)
            .map(Self::from_secret)
            .ok_or(CodecError::BadPublicKey)
    }

    fn from_secret(secret: <Active as Curve>::Secret) -> Self {
        let encoded = Active::public_of(&secret);
        KeyPair {
            public: PublicKey::from_sec1_bytes(&encoded).expect("a secret's public key is valid"),
            public_hex: hex::encode(encoded),
            secret,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// This pair's public half as an encryption recipient.
    pub fn recipient(&self) -> Recipient {
        Recipient::new(&self.public)
    }

    /// Uncompressed SEC1 public key, lowercase hex (130 chars).
    pub fn public_hex(&self) -> &str {
        &self.public_hex
    }

    /// Decrypts one packed hex field addressed to this key.
    pub fn decrypt(&self, packed_hex: &str) -> Result<Vec<u8>, CodecError> {
        decrypt_as::<Active>(&self.secret, packed_hex)
    }

    /// Decrypts to a UTF-8 string; invalid UTF-8 is treated as tampering.
    pub fn decrypt_str(&self, packed_hex: &str) -> Result<String, CodecError> {
        String::from_utf8(self.decrypt(packed_hex)?).map_err(|_| CodecError::Authentication)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public_hex)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A public key prepared once for encryption (an attested model key, a client key): every
/// message encrypted to it skips the point's validation and conversion.
#[derive(Clone)]
pub struct Recipient {
    public: <Active as Curve>::Public,
    sec1: [u8; 65],
}

impl Recipient {
    pub fn new(key: &PublicKey) -> Self {
        let encoded = key.to_encoded_point(false);
        Recipient {
            public: Active::parse_public(encoded.as_bytes()).expect("a k256 key is on the curve"),
            sec1: encoded
                .as_bytes()
                .try_into()
                .expect("an uncompressed point is 65 bytes"),
        }
    }

    /// The uncompressed SEC1 key.
    pub(crate) fn sec1(&self) -> &[u8; 65] {
        &self.sec1
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Recipient")
    }
}

pub fn public_key_hex(key: &PublicKey) -> String {
    hex::encode(key.to_encoded_point(false).as_bytes())
}

/// Parses a public key given as 130 hex (`04…`), 128 hex (no prefix) or 66 hex (compressed),
/// with or without `0x`.
pub fn parse_public_key(text: &str) -> Result<PublicKey, CodecError> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let mut bytes = hex::decode(text).map_err(|_| CodecError::BadPublicKey)?;
    if bytes.len() == 64 {
        bytes.insert(0, 0x04);
    }
    if !matches!(bytes.len(), 33 | 65) {
        return Err(CodecError::BadPublicKey);
    }
    PublicKey::from_sec1_bytes(&bytes).map_err(|_| CodecError::BadPublicKey)
}

/// Ethereum-style address: the last 20 bytes of keccak256 of the uncompressed key without `04`.
pub fn address(key: &PublicKey) -> [u8; 20] {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    out
}

fn cipher<C: Curve>(secret: &C::Secret, peer: &C::Public) -> Aes256Gcm {
    let shared = C::shared_x(secret, peer);
    let hk = Hkdf::<Sha256>::new(None, shared.as_ref());
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(HKDF_INFO, key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key")
}

/// Encrypts with a caller-chosen ephemeral secret and nonce: the test vector; everything
/// else uses [`encrypt`].
#[cfg(test)]
pub(crate) fn encrypt_with(
    to: &Recipient,
    ephemeral: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
) -> String {
    let secret = Active::secret(ephemeral).expect("a valid ephemeral secret");
    seal::<Active>(&to.public, &secret, nonce, plaintext)
}

/// Packs `plaintext` sealed to `to` under `ephemeral`, hex-encoded straight into the output.
fn seal<C: Curve>(
    to: &C::Public,
    ephemeral: &C::Secret,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
) -> String {
    let mut sealed = plaintext.to_vec();
    let tag = cipher::<C>(ephemeral, to)
        .encrypt_in_place_detached(Nonce::from_slice(nonce), b"", &mut sealed)
        .expect("AES-GCM encryption of in-memory data cannot fail");
    let mut out = vec![0u8; 2 * (MIN_PACKED_LEN + sealed.len())];
    let mut at = 0;
    for part in [&C::public_of(ephemeral)[..], nonce, &sealed, &tag] {
        const_hex::encode_to_slice(part, &mut out[at..at + 2 * part.len()])
            .expect("the output is sized for every part");
        at += 2 * part.len();
    }
    String::from_utf8(out).expect("hex is ASCII")
}

/// Encrypts one field to `to` with a fresh ephemeral key and nonce.
pub fn encrypt(to: &Recipient, plaintext: &[u8]) -> String {
    encrypt_to::<Active>(&to.public, plaintext)
}

/// [`encrypt`] on a chosen backend (benchmarks compare them).
pub fn encrypt_to<C: Curve>(to: &C::Public, plaintext: &[u8]) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    seal::<C>(to, &C::random_secret(), &nonce, plaintext)
}

/// Opens one packed hex field on a chosen backend: one hex pass, one allocation (the
/// plaintext, decrypted in place).
pub fn decrypt_as<C: Curve>(secret: &C::Secret, packed_hex: &str) -> Result<Vec<u8>, CodecError> {
    if packed_hex.len() < MIN_PACKED_LEN * 2 {
        return Err(CodecError::TooShort);
    }
    if packed_hex.len() % 2 != 0 {
        return Err(CodecError::NotHex);
    }
    let (head_hex, rest_hex) = packed_hex.as_bytes().split_at(2 * (PUB_LEN + NONCE_LEN));
    let mut head = [0u8; PUB_LEN + NONCE_LEN];
    // const-hex: SIMD, ~15× the `hex` crate on a chunk. It would strip a `0x` prefix, but
    // then the halves no longer fit their fixed-size outputs, so one still fails as NotHex.
    const_hex::decode_to_slice(head_hex, &mut head).map_err(|_| CodecError::NotHex)?;
    let mut body = vec![0u8; rest_hex.len() / 2];
    const_hex::decode_to_slice(rest_hex, &mut body).map_err(|_| CodecError::NotHex)?;
    let eph = C::parse_public(&head[..PUB_LEN])?;
    let nonce = *Nonce::from_slice(&head[PUB_LEN..]);
    let tag_at = body.len() - TAG_LEN;
    let tag = aes_gcm::Tag::clone_from_slice(&body[tag_at..]);
    body.truncate(tag_at);
    cipher::<C>(secret, &eph)
        .decrypt_in_place_detached(&nonce, b"", &mut body, &tag)
        .map_err(|_| CodecError::Authentication)?;
    Ok(body)
}

/// True when `text` looks like a packed field (hex of at least the minimum length). Used to
/// tell ciphertext from plaintext without attempting a decryption.
pub fn looks_packed(text: &str) -> bool {
    text.len() >= MIN_PACKED_LEN * 2
        && text.len() % 2 == 0
        && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vector() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/e2ee-vector.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn key(v: &Value, field: &str) -> [u8; 32] {
        hex::decode(v[field].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn reproduces_the_fixture_vector_byte_for_byte() {
        let v = vector();
        let recipient = KeyPair::from_bytes(&key(&v, "recipient_private_key")).unwrap();
        let eph = key(&v, "ephemeral_private_key");
        let nonce: [u8; 12] = hex::decode(v["nonce"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let packed = encrypt_with(
            &recipient.recipient(),
            &eph,
            &nonce,
            v["plaintext"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(packed, v["packed_hex"].as_str().unwrap());
        let plain = recipient.decrypt(&packed).unwrap();
        assert_eq!(plain, v["plaintext"].as_str().unwrap().as_bytes());
    }

    #[test]
    fn every_backend_reproduces_the_vector() {
        fn check<C: Curve>(v: &Value) {
            let recipient = C::secret(&key(v, "recipient_private_key")).unwrap();
            let to = C::parse_public(&C::public_of(&recipient)).unwrap();
            let eph = C::secret(&key(v, "ephemeral_private_key")).unwrap();
            let nonce: [u8; 12] = hex::decode(v["nonce"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let plaintext = v["plaintext"].as_str().unwrap().as_bytes();
            let packed = seal::<C>(&to, &eph, &nonce, plaintext);
            assert_eq!(packed, v["packed_hex"].as_str().unwrap(), "{}", C::name());
            assert_eq!(decrypt_as::<C>(&recipient, &packed).unwrap(), plaintext);
            let fresh = encrypt_to::<C>(&to, plaintext);
            assert_eq!(decrypt_as::<C>(&recipient, &fresh).unwrap(), plaintext);
        }
        let v = vector();
        check::<curve::K256>(&v);
        check::<Active>(&v);
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let pair = KeyPair::generate();
        let packed = encrypt(&pair.recipient(), "héllo ✓".as_bytes());
        assert!(looks_packed(&packed));
        assert_eq!(pair.decrypt_str(&packed).unwrap(), "héllo ✓");
        // Flip one ciphertext nibble.
        let mut bad = packed.clone().into_bytes();
        let i = bad.len() - 40;
        bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            pair.decrypt(std::str::from_utf8(&bad).unwrap()),
            Err(CodecError::Authentication)
        );
        assert_eq!(pair.decrypt("zz"), Err(CodecError::TooShort));
        assert_eq!(pair.decrypt(&"zz".repeat(100)), Err(CodecError::NotHex));
        // A `0x` anywhere, even where a hex decoder would take it for a prefix, is not hex.
        let head = 2 * (PUB_LEN + NONCE_LEN);
        for at in [0, head] {
            let mut prefixed = packed.clone();
            prefixed.replace_range(at..at + 2, "0x");
            assert_eq!(
                pair.decrypt(&prefixed),
                Err(CodecError::NotHex),
                "0x at {at}"
            );
        }
        assert_eq!(
            pair.decrypt(&packed.to_uppercase()).unwrap(),
            "héllo ✓".as_bytes()
        );
        // Another recipient cannot open it.
        assert_eq!(
            KeyPair::generate().decrypt(&packed),
            Err(CodecError::Authentication)
        );
    }

    #[test]
    fn empty_plaintext_is_the_minimum_length() {
        let pair = KeyPair::generate();
        let packed = encrypt(&pair.recipient(), b"");
        assert_eq!(packed.len(), MIN_PACKED_LEN * 2);
        assert_eq!(pair.decrypt(&packed).unwrap(), b"");
    }

    #[test]
    fn public_keys_parse_in_every_accepted_form() {
        let pair = KeyPair::generate();
        let full = pair.public_hex().to_string();
        let compressed = hex::encode(pair.public_key().to_encoded_point(true).as_bytes());
        for form in [
            full.clone(),
            format!("0x{full}"),
            full[2..].to_string(),
            compressed.clone(),
            format!("0x{}", compressed.to_uppercase()),
        ] {
            assert_eq!(
                public_key_hex(&parse_public_key(&form).unwrap()),
                full,
                "{form}"
            );
        }
        assert!(parse_public_key("04abcd").is_err());
        assert!(parse_public_key(&"0".repeat(130)).is_err());
    }

    #[test]
    fn address_matches_the_captured_attestation() {
        let key = parse_public_key("041d9bbc96671c3fbc983867bd7a6b5c83298e040801764b7085352d84f3f095125db36956caed8c84bfefca635c3c455f409c79a3889d679af688f4aded542fd5").unwrap();
        assert_eq!(
            hex::encode(address(&key)),
            "6525e128afcffebf7eed05d485d7be983cdae934"
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let pair = KeyPair::from_bytes(&[0x11; 32]).unwrap();
        let shown = format!("{pair:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains("1111111111"));
    }
}
