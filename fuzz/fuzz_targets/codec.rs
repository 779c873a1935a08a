//! The E2EE codec's unpacking: packed hex of any shape, public keys in any text form.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use venice_e2ee_proxy::e2ee::codec::{self, KeyPair};

static KEY: OnceLock<KeyPair> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let key = KEY.get_or_init(KeyPair::generate);
    let _ = key.decrypt(&hex::encode(data));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = key.decrypt(text);
        let _ = codec::parse_public_key(text);
    }
});
