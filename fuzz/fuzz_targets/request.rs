//! Client request bodies: the chat request normaliser and the Responses API translation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = venice_e2ee_proxy::api::completions::parse::parse(data) {
        let key = venice_e2ee_proxy::e2ee::codec::KeyPair::generate();
        let _ = req.encrypted_body(&key.recipient());
    }
    let _ = venice_e2ee_proxy::api::responses::translate::translate(data, None);
});
