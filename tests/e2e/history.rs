//! Agents' long histories through the real server: an unchanged history message goes upstream
//! as last turn's ciphertext (same client, same model key), never as another client's, and
//! not at all with `encryption.reuse_ciphertexts: false`; a long history is encrypted whole.

use crate::harness::*;
use serde_json::{json, Value};

fn turn(history: &[&str]) -> Value {
    let messages: Vec<Value> = history
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": t})
        })
        .collect();
    json!({"model": MODEL, "stream": false, "messages": messages})
}

fn contents(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

async fn send(p: &Proxy, body: &Value, session: Option<&str>) {
    let mut r = p.http.post(p.url("/chat/completions")).json(body);
    if let Some(id) = session {
        r = r.header("X-Venice-Proxy-Session-Id", id);
    }
    assert_eq!(r.send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_history_message_is_sent_as_last_turns_ciphertext() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let first = ["plan the trip", "Day one: Lisbon.", "and day two?"];
    let second = [
        "plan the trip",
        "Day one: Lisbon.",
        "and day two?",
        "Sintra.",
        "thanks",
    ];
    send(&p, &turn(&first), None).await;
    send(&p, &turn(&second), None).await;
    send(&p, &turn(&second), Some("agent-7")).await;
    let chats = p.sim.record().chats;
    let (a, b, c) = (
        contents(&chats[0].body),
        contents(&chats[1].body),
        contents(&chats[2].body),
    );
    assert_eq!(&b[..3], &a[..], "the history was not encrypted again");
    assert_eq!(
        chats[1].decrypted, second,
        "and still decrypts to the history"
    );
    assert!(
        c.iter().all(|x| !a.contains(x) && !b.contains(x)),
        "another client (a session) never gets these ciphertexts"
    );

    // Switched off: every turn encrypted anew.
    let q = Proxy::start(sim().await, |c| c.encryption.reuse_ciphertexts = false).await;
    send(&q, &turn(&first), None).await;
    send(&q, &turn(&first), None).await;
    let chats = q.sim.record().chats;
    let (x, y) = (contents(&chats[0].body), contents(&chats[1].body));
    assert!(x.iter().zip(&y).all(|(m, n)| m != n));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_history_is_encrypted_whole_and_in_order() {
    let p = Proxy::start(sim().await, |_| {}).await;
    let history: Vec<String> = (0..201).map(|i| format!("message number {i}")).collect();
    let refs: Vec<&str> = history.iter().map(String::as_str).collect();
    send(&p, &turn(&refs), None).await;
    let chats = p.sim.record().chats;
    assert_eq!(chats[0].decrypted, history);
    let sent = contents(&chats[0].body);
    assert!(
        sent.iter().all(|c| !c.contains("message")),
        "all ciphertext"
    );
}
