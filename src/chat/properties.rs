//! Property tests over the proxy's entry points for untrusted input: Venice's SSE (any split
//! of a valid stream decodes identically, any bytes never panic), the codec's unpacking, the
//! request normaliser (no input panics it; no conversation ever puts a plaintext message into
//! the upstream body), the Messages API's translation (any request translates or names its
//! field). The tool-call parsers and the attestation parser have their own
//! (`tools/parser/tests.rs`, `attestation/evidence/drift_tests.rs`). `fuzz/` runs the same
//! entry points under cargo fuzz.

use crate::api::completions::parse;
use crate::chat::answer::Transformer;
use crate::e2ee::codec::{self, KeyPair};
use crate::e2ee::keys::ClientKey;
use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;

fn key() -> Arc<ClientKey> {
    Arc::new(ClientKey {
        pair: KeyPair::generate(),
        created: std::time::Instant::now(),
    })
}

/// A valid encrypted Venice stream of `words` (content) and `thoughts` (reasoning), framed
/// with LF or CRLF.
fn venice_stream(key: &ClientKey, words: &[String], thoughts: &[String], crlf: bool) -> Vec<u8> {
    let nl = if crlf { "\r\n" } else { "\n" };
    let enc = |t: &str| codec::encrypt(&key.pair.recipient(), t.as_bytes());
    let mut s = String::new();
    let mut push = |v: Value| s.push_str(&format!("data: {v}{nl}{nl}"));
    push(
        json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
    );
    for t in thoughts {
        push(json!({"id": "c", "choices": [{"index": 0, "delta": {"reasoning_content": enc(t)}}]}));
    }
    for w in words {
        push(json!({"id": "c", "choices": [{"index": 0, "delta": {"content": enc(w)}}]}));
    }
    push(json!({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
    s.push_str(&format!("data: [DONE]{nl}{nl}"));
    s.into_bytes()
}

/// The whole answer the transformer makes of `input` fed in the given pieces.
fn transform(
    key: &Arc<ClientKey>,
    input: &[u8],
    cuts: &[usize],
) -> Result<(String, String), String> {
    let mut t = Transformer::collecting(key.clone());
    let mut out = BytesMut::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        let cut = cut.clamp(from, input.len());
        t.push(&input[from..cut], &mut out)
            .map_err(|e| e.to_string())?;
        from = cut;
    }
    let answer = t.finish_answer().map_err(|e| e.to_string())?;
    Ok((answer.content, answer.reasoning))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any split of a valid stream (LF or CRLF framing) decodes to the same answer.
    #[test]
    fn any_split_of_a_valid_stream_decodes_identically(
        words in proptest::collection::vec("[a-zA-Zé✓ ]{1,8}", 1..6),
        thoughts in proptest::collection::vec("[a-z ]{1,8}", 0..3),
        crlf in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let k = key();
        let input = venice_stream(&k, &words, &thoughts, crlf);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = transform(&k, &input, &[]).unwrap();
        prop_assert_eq!(&whole.0, &words.concat());
        prop_assert_eq!(&whole.1, &thoughts.concat());
        prop_assert_eq!(transform(&k, &input, &cuts).unwrap(), whole);
    }

    /// Arbitrary bytes from upstream never panic the transformer, and a stream that is not
    /// valid ciphertext for us never yields text.
    #[test]
    fn arbitrary_upstream_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512), cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
        let k = key();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        if let Ok((content, reasoning)) = transform(&k, &input, &cuts) {
            prop_assert!(content.is_empty() && reasoning.is_empty(), "text out of random bytes");
        }
    }

    /// The codec's unpacking never panics, whatever it is given.
    #[test]
    fn unpacking_never_panics(text in "[0-9a-fA-Fx ]{0,400}", raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let k = KeyPair::generate();
        let _ = k.decrypt(&text);
        let _ = k.decrypt(&hex::encode(&raw));
        let _ = codec::parse_public_key(&text);
        let _ = codec::looks_packed(&text);
    }

    /// No conversation ever puts a plaintext message into the upstream body: every message's
    /// content is ciphertext that decrypts, for the model key, to that message's rendering.
    #[test]
    fn no_plaintext_message_ever_goes_upstream(
        turns in proptest::collection::vec(("(system|developer|user|assistant)", "[a-zA-Z0-9 .,!?é]{1,40}"), 1..8),
        with_tools in any::<bool>(),
        format in any::<bool>(),
    ) {
        let mut body = json!({"model": "e2ee-qwen3-6-27b",
            "messages": turns.iter().map(|(r, c)| json!({"role": r, "content": c})).collect::<Vec<_>>()});
        if with_tools {
            body["tools"] = json!([{"type": "function", "function": {"name": "secret_tool", "parameters": {"type": "object"}}}]);
        }
        if format {
            body["response_format"] = json!({"type": "json_object"});
        }
        let req = parse::parse(body.to_string().as_bytes()).unwrap();
        let model = KeyPair::generate();
        let sent: Value = serde_json::from_slice(&req.encrypted_body(&model.recipient())).unwrap();
        let text = sent.to_string();
        for (_, content) in &turns {
            prop_assert!(!text.contains(content.as_str()) || content.len() < 4, "`{}` in clear", content);
        }
        prop_assert!(!text.contains("secret_tool"));
        for m in sent["messages"].as_array().unwrap() {
            let c = m["content"].as_str().unwrap();
            prop_assert!(codec::looks_packed(c));
            prop_assert!(model.decrypt_str(c).is_ok());
        }
    }

    /// No JSON body, however malformed, panics the request normaliser.
    #[test]
    fn the_request_normaliser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse::parse(&body);
        let _ = crate::api::responses::translate::translate(&body, None);
    }

    /// Structurally valid JSON with wrong types anywhere: a clean error, never a panic.
    #[test]
    fn wrong_types_in_requests_never_panic(field in "(model|messages|tools|tool_choice|stream|stream_options|response_format|metadata|temperature|max_tokens|stop|venice_parameters|input|text|reasoning)",
        value in prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!("x")), Just(json!([])), Just(json!({})), Just(json!([{}])), Just(json!([{"role": 5}]))]) {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "input": "hi"});
        body[field.as_str()] = value;
        let bytes = body.to_string();
        let _ = parse::parse(bytes.as_bytes());
        let _ = crate::api::responses::translate::translate(bytes.as_bytes(), None);
    }

    /// Any Messages API request, however odd its fields and blocks, either becomes an
    /// internal request that passes its checks, or is a 400 naming the field at fault; never
    /// a panic.
    #[test]
    fn any_messages_request_translates_or_names_its_field(body in messages_request()) {
        let bytes = body.to_string();
        let result = crate::api::messages::translate::translate(bytes.as_bytes())
            .and_then(|(req, _)| req.validate());
        if let Err(e) = result {
            prop_assert_eq!(e.status, 400, "{:?}", e);
            prop_assert!(e.param.as_deref().is_some_and(|p| !p.is_empty()), "{:?} for {}", e, bytes);
        }
    }
}

/// JSON built from the Messages API's own words, so generated requests get past the first
/// check often and reach the deeper ones.
fn messages_json() -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        Just("text"),
        Just("tool_use"),
        Just("tool_result"),
        Just("thinking"),
        Just("image"),
        Just("user"),
        Just("assistant"),
        Just("system"),
        Just("auto"),
        Just("any"),
        Just("tool"),
        Just("enabled"),
        Just("adaptive"),
        Just("disabled"),
        Just("json_schema"),
        Just("object"),
        Just("web_search_20250305"),
        Just("redacted_thinking"),
        Just(""),
        Just("x"),
    ];
    let key = prop_oneof![
        Just("type"),
        Just("text"),
        Just("role"),
        Just("content"),
        Just("id"),
        Just("name"),
        Just("input"),
        Just("tool_use_id"),
        Just("is_error"),
        Just("source"),
        Just("schema"),
        Just("budget_tokens"),
        Just("cache_control"),
        Just("input_schema"),
        Just("effort"),
        Just("display"),
        Just("user_id"),
        Just("format"),
        Just("disable_parallel_tool_use"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..70000).prop_map(|n| json!(n)),
        word.prop_map(|w| json!(w)),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..5).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// A Messages request: its fields present or not, each a plausible value or any JSON.
fn messages_request() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("model"),
        Just("max_tokens"),
        Just("messages"),
        Just("system"),
        Just("tools"),
        Just("tool_choice"),
        Just("thinking"),
        Just("stop_sequences"),
        Just("metadata"),
        Just("output_config"),
        Just("top_k"),
        Just("temperature"),
        Just("stream"),
        Just("context_management"),
        Just("mcp_servers"),
    ];
    let message = (
        prop_oneof![
            Just(json!("user")),
            Just(json!("assistant")),
            messages_json()
        ],
        prop_oneof![
            Just(json!("hi")),
            proptest::collection::vec(messages_json(), 0..4).prop_map(Value::Array),
            messages_json(),
        ],
    )
        .prop_map(|(role, content)| json!({"role": role, "content": content}));
    (
        proptest::collection::vec(message, 0..4),
        proptest::collection::vec((field, messages_json()), 0..4),
    )
        .prop_map(|(messages, fields)| {
            let mut body = json!({"model": "m", "max_tokens": 64, "messages": messages});
            for (f, v) in fields {
                body[f] = v;
            }
            body
        })
}
