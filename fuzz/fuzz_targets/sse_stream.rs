//! Venice's SSE as it reaches the proxy: arbitrary bytes, split at an arbitrary point, through
//! the whole stream transformer (SSE parsing, chunk JSON, decryption attempts).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use venice_e2ee_proxy::e2ee::codec::KeyPair;
use venice_e2ee_proxy::e2ee::keys::ClientKey;
use venice_e2ee_proxy::api::completions::writer::ChatWriter;
use venice_e2ee_proxy::chat::answer::{Mode, Transformer};

static KEY: OnceLock<Arc<ClientKey>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let key = KEY.get_or_init(|| {
        Arc::new(ClientKey {
            pair: KeyPair::generate(),
            created: std::time::Instant::now(),
        })
    });
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    for mode in [
        Mode::Stream {
            include_usage: true,
        },
        Mode::Aggregate,
    ] {
        let mut t = match mode {
            Mode::Aggregate => Transformer::collecting(key.clone()),
            Mode::Stream { .. } => {
                Transformer::streaming(key.clone(), Box::new(ChatWriter::new("m".into(), mode)), None)
            }
        };
        let mut out = bytes::BytesMut::new();
        if t.push(&data[..split], &mut out).is_ok() && t.push(&data[split..], &mut out).is_ok() {
            let _ = match mode {
                Mode::Aggregate => t.finish_answer().map(|_| ()),
                Mode::Stream { .. } => t.finish(&mut out),
            };
        }
    }
});
