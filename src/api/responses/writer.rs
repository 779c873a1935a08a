//! An answer as the Responses API shows it: output items (`reasoning`, `message` with
//! `output_text`, `function_call`) built from the pieces of a chat answer as they arrive, the
//! stream events for them in the documented order with `sequence_number`s, and the final
//! Response object. Non-streaming answers use the same writer and keep only the object.

use super::items;
use super::store::ResponseStore;
use super::{new_id, Meta};
use crate::chat::answer_writer::EventWriter;
use crate::chat::conversation::{Message, PastCall};
use crate::chat::tool_calls::emulate::CallDelta;
use crate::error::ApiError;
use bytes::BytesMut;
use serde_json::{json, Value};
use std::sync::Arc;

enum Open {
    Reasoning {
        text: String,
    },
    Message {
        text: String,
    },
    /// A tool call: the arguments so far, and the name the model called (as offered).
    Call {
        arguments: String,
        offered: String,
    },
}

pub struct ResponsesWriter {
    meta: Arc<Meta>,
    /// Where the finished conversation is kept for `previous_response_id`, when it is.
    store: Option<Arc<ResponseStore>>,
    pub(crate) id: String,
    created: i64,
    seq: u64,
    started: bool,
    /// Output items so far; the last is the open one when `open` is set.
    items: Vec<Value>,
    /// Each finished call as the model made it (offered name, arguments), by item index,
    /// for the stored conversation.
    calls: Vec<(usize, String, String)>,
    open: Option<Open>,
    usage: Option<Value>,
    finish: Option<String>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Chat usage → Responses usage.
fn usage(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let reasoning = u
        .pointer("/completion_tokens_details/reasoning_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let cached = u
        .pointer("/prompt_tokens_details/cached_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({
        "input_tokens": n("prompt_tokens"),
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": n("completion_tokens"),
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": n("total_tokens"),
    })
}

impl ResponsesWriter {
    pub fn new(meta: Arc<Meta>, store: Option<Arc<ResponseStore>>) -> Self {
        ResponsesWriter {
            store: store.filter(|_| meta.store),
            meta,
            id: new_id("resp"),
            created: now_unix(),
            seq: 0,
            started: false,
            items: Vec::new(),
            calls: Vec::new(),
            open: None,
            usage: None,
            finish: None,
        }
    }

    fn event(&mut self, out: &mut BytesMut, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        crate::api::write_named_event(out, kind, &body);
    }

    /// The Response object as it stands.
    pub(crate) fn response(&self, status: &str) -> Value {
        let m = &self.meta;
        let incomplete = (status == "incomplete").then(|| json!({"reason": "max_output_tokens"}));
        let text = if m.text.is_null() {
            json!({"format": {"type": "text"}})
        } else {
            m.text.clone()
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": null,
            "incomplete_details": incomplete,
            "instructions": m.instructions,
            "max_output_tokens": m.max_output_tokens,
            "model": m.model,
            "output": self.items,
            "parallel_tool_calls": m.parallel_tool_calls,
            "previous_response_id": m.previous_response_id,
            "reasoning": if m.reasoning.is_null() { json!({"effort": null, "summary": null}) } else { m.reasoning.clone() },
            // Whether it really is stored: not with the store off (responses.store_size: 0).
            "store": self.store.is_some(),
            "temperature": m.sampling.get("temperature").cloned().unwrap_or(Value::Null),
            "text": text,
            "tool_choice": if m.tool_choice.is_null() { json!("auto") } else { m.tool_choice.clone() },
            "tools": if m.tools.is_null() { json!([]) } else { m.tools.clone() },
            "top_p": m.sampling.get("top_p").cloned().unwrap_or(Value::Null),
            "truncation": "disabled",
            "usage": self.usage.as_ref().map(usage),
            "metadata": if m.metadata.is_null() { json!({}) } else { m.metadata.clone() },
        })
    }

    fn index(&self) -> usize {
        self.items.len() - 1
    }

    fn item_id(&self) -> Value {
        self.items.last().map_or(Value::Null, |i| i["id"].clone())
    }

    /// Opens a new output item (closing the open one).
    fn open(&mut self, out: &mut BytesMut, item: Value, open: Open) {
        self.close(out);
        self.items.push(item.clone());
        let index = self.index();
        self.event(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        let id = self.item_id();
        match &open {
            Open::Reasoning { .. } => self.event(out, "response.reasoning_summary_part.added", json!({
                "item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})),
            Open::Message { .. } => self.event(out, "response.content_part.added", json!({
                "item_id": id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}})),
            Open::Call { .. } => {}
        }
        self.open = Some(open);
    }

    /// Closes the open item: its `.done` events, and the finished item.
    fn close(&mut self, out: &mut BytesMut) {
        let Some(open) = self.open.take() else {
            return;
        };
        let (index, id) = (self.index(), self.item_id());
        match open {
            Open::Reasoning { text } => {
                self.event(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({
                    "item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                );
                let part = json!({"type": "summary_text", "text": text});
                self.event(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({
                    "item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                );
                self.items[index]["summary"] = json!([part]);
            }
            Open::Message { text } => {
                self.event(out, "response.output_text.done", json!({
                    "item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}));
                let part =
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                self.event(
                    out,
                    "response.content_part.done",
                    json!({
                    "item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                self.items[index]["content"] = json!([part]);
            }
            Open::Call { arguments, offered } => {
                // Custom tools and local_shell get their input whole, once the model's
                // arguments are complete: they are not JSON to the client.
                match self.items[index]["type"].as_str() {
                    Some("custom_tool_call") => {
                        let input = items::custom_input(&arguments);
                        self.event(
                            out,
                            "response.custom_tool_call_input.delta",
                            json!({
                            "item_id": id, "output_index": index, "delta": input}),
                        );
                        self.event(
                            out,
                            "response.custom_tool_call_input.done",
                            json!({
                            "item_id": id, "output_index": index, "input": input}),
                        );
                        self.items[index]["input"] = json!(input);
                    }
                    Some("local_shell_call") => {
                        self.items[index]["action"] = items::shell_action(&arguments);
                    }
                    _ => {
                        self.event(
                            out,
                            "response.function_call_arguments.done",
                            json!({
                            "item_id": id, "output_index": index, "arguments": arguments}),
                        );
                        self.items[index]["arguments"] = json!(arguments);
                    }
                }
                self.calls.push((index, offered, arguments));
            }
        }
        self.items[index]["status"] = json!("completed");
        let item = self.items[index].clone();
        self.event(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
    }

    /// The answer as chat messages, for the response store.
    pub(crate) fn as_messages(&self) -> Vec<Message> {
        let mut content = String::new();
        for item in self.items.iter().filter(|i| i["type"] == "message") {
            for p in item["content"].as_array().into_iter().flatten() {
                content.push_str(p["text"].as_str().unwrap_or_default());
            }
        }
        // Calls under the names the model was offered, as it will see them next turn.
        let calls = self
            .calls
            .iter()
            .map(|(index, offered, arguments)| PastCall {
                id: self.items[*index]["call_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                name: offered.clone(),
                arguments: arguments.clone(),
            })
            .collect();
        vec![Message::Assistant { content, calls }]
    }
}

impl EventWriter for ResponsesWriter {
    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.response("in_progress");
        self.event(out, "response.created", json!({"response": r}));
        let r = self.response("in_progress");
        self.event(out, "response.in_progress", json!({"response": r}));
    }

    fn reasoning(&mut self, out: &mut BytesMut, delta: &str) {
        if delta.is_empty() {
            return;
        }
        self.start(out);
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            let item = json!({"type": "reasoning", "id": new_id("rs"), "summary": []});
            self.open(
                out,
                item,
                Open::Reasoning {
                    text: String::new(),
                },
            );
        }
        if let Some(Open::Reasoning { text }) = &mut self.open {
            text.push_str(delta);
        }
        let (index, id) = (self.index(), self.item_id());
        self.event(
            out,
            "response.reasoning_summary_text.delta",
            json!({
            "item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
        );
    }

    fn text(&mut self, out: &mut BytesMut, delta: &str) {
        if delta.is_empty() {
            return;
        }
        self.start(out);
        if !matches!(self.open, Some(Open::Message { .. })) {
            let item = json!({"type": "message", "id": new_id("msg"), "status": "in_progress",
                "role": "assistant", "content": []});
            self.open(
                out,
                item,
                Open::Message {
                    text: String::new(),
                },
            );
        }
        if let Some(Open::Message { text }) = &mut self.open {
            text.push_str(delta);
        }
        let (index, id) = (self.index(), self.item_id());
        self.event(out, "response.output_text.delta", json!({
            "item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}));
    }

    /// A tool-call delta: the first of a call (with `id` and `name`) opens its item.
    fn call(&mut self, out: &mut BytesMut, d: &CallDelta) {
        self.start(out);
        if let (Some(call_id), Some(name)) = (&d.id, &d.name) {
            let origin = self.meta.tool_origins.get(name);
            let item = items::call_item(origin, name, &new_id("fc"), call_id);
            self.open(
                out,
                item,
                Open::Call {
                    arguments: String::new(),
                    offered: name.clone(),
                },
            );
        }
        if d.arguments.is_empty() {
            return;
        }
        if let Some(Open::Call { arguments, .. }) = &mut self.open {
            arguments.push_str(&d.arguments);
        }
        if self
            .items
            .last()
            .is_some_and(|i| i["type"] != "function_call")
        {
            return;
        }
        let (index, id) = (self.index(), self.item_id());
        self.event(
            out,
            "response.function_call_arguments.delta",
            json!({
            "item_id": id, "output_index": index, "delta": d.arguments}),
        );
    }

    fn set_usage(&mut self, u: &Value) {
        self.usage = Some(u.clone());
    }

    fn set_finish(&mut self, reason: &str, _stop_sequence: Option<&str>) {
        self.finish = Some(reason.to_string());
    }

    /// Closes the answer: `response.completed` (or `.incomplete` when cut at the token
    /// limit). Returns the final Response object.
    fn complete(&mut self, out: &mut BytesMut) -> Value {
        self.start(out);
        self.close(out);
        let status = if self.finish.as_deref() == Some("length") {
            "incomplete"
        } else {
            "completed"
        };
        let r = self.response(status);
        let kind = format!("response.{status}");
        self.event(out, &kind, json!({"response": r}));
        if let Some(store) = &self.store {
            let mut conversation = self.meta.history.clone();
            conversation.extend(self.as_messages());
            store.put(self.meta.tenant, self.id.clone(), conversation);
        }
        r
    }

    /// Ends a stream that failed: `response.failed` with the error.
    fn failed(&mut self, out: &mut BytesMut, e: &ApiError) {
        self.start(out);
        let mut r = self.response("failed");
        r["error"] = json!({"code": e.code, "message": e.message});
        self.event(out, "response.failed", json!({"response": r}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `store` says whether the response really is kept: a client asking for it (the
    /// default) with the store off is told it is not.
    #[test]
    fn store_says_whether_the_response_is_kept() {
        let asked = || {
            Arc::new(Meta {
                store: true,
                ..Meta::default()
            })
        };
        assert_eq!(
            ResponsesWriter::new(asked(), None).response("completed")["store"],
            false
        );
        let store = ResponseStore::new(1 << 20, std::time::Duration::from_secs(60)).map(Arc::new);
        assert!(store.is_some());
        let kept = ResponsesWriter::new(asked(), store.clone());
        assert_eq!(kept.response("completed")["store"], true);
        let declined = Arc::new(Meta {
            store: false,
            ..Meta::default()
        });
        assert_eq!(
            ResponsesWriter::new(declined, store).response("completed")["store"],
            false
        );
    }

    #[test]
    fn namespaced_custom_and_shell_calls_come_back_as_their_own_items() {
        let tools = crate::api::responses::items::translate(&json!([
            {"type": "namespace", "name": "ns", "description": "", "tools": [{"type": "function", "name": "f"}]},
            {"type": "custom", "name": "apply_patch"},
            {"type": "local_shell"}
        ]))
        .unwrap();
        let meta = Meta {
            tool_origins: tools.origins,
            ..Meta::default()
        };
        let mut w = ResponsesWriter::new(Arc::new(meta), None);
        let mut out = BytesMut::new();
        let call = |id: &str, name: &str, args: &str| CallDelta {
            index: 0,
            id: Some(id.into()),
            name: Some(name.into()),
            arguments: args.into(),
        };
        w.call(&mut out, &call("c1", "ns__f", r#"{"x":1}"#));
        w.call(
            &mut out,
            &call("c2", "apply_patch", r#"{"input":"*** Begin Patch"}"#),
        );
        w.call(
            &mut out,
            &call("c3", "local_shell", r#"{"command":["ls"]}"#),
        );
        let r = w.complete(&mut out);
        let o = &r["output"];
        assert_eq!(
            (
                o[0]["type"].as_str(),
                o[0]["name"].as_str(),
                o[0]["namespace"].as_str()
            ),
            (Some("function_call"), Some("f"), Some("ns"))
        );
        assert_eq!(o[1]["type"], "custom_tool_call");
        assert_eq!(o[1]["input"], "*** Begin Patch");
        assert_eq!(o[2]["type"], "local_shell_call");
        assert_eq!(o[2]["action"]["command"], json!(["ls"]));
        let kinds: Vec<String> = crate::api::named_events(&out)
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        assert!(kinds.contains(&"response.custom_tool_call_input.done".to_string()));
        // The custom tool's JSON arguments never reach the client as argument deltas.
        assert_eq!(
            kinds
                .iter()
                .filter(|k| k.as_str() == "response.function_call_arguments.delta")
                .count(),
            1
        );
        // The stored conversation names the calls as the model was offered them.
        let stored = w.as_messages();
        let Message::Assistant { calls, .. } = &stored[0] else {
            panic!("{stored:?}")
        };
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ns__f", "apply_patch", "local_shell"]);
    }

    #[test]
    fn events_in_the_documented_order() {
        let mut w = ResponsesWriter::new(Arc::new(Meta::default()), None);
        let mut out = BytesMut::new();
        w.reasoning(&mut out, "think");
        w.text(&mut out, "Hel");
        w.text(&mut out, "lo");
        w.call(
            &mut out,
            &CallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some("w".into()),
                arguments: "{\"a\":".into(),
            },
        );
        w.call(
            &mut out,
            &CallDelta {
                index: 0,
                id: None,
                name: None,
                arguments: "1}".into(),
            },
        );
        w.set_usage(&json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}));
        w.set_finish("tool_calls", None);
        let r = w.complete(&mut out);
        let evs = crate::api::named_events(&out);
        let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, e) in evs.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64);
        }
        assert_eq!(r["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(r["output"][2]["arguments"], "{\"a\":1}");
        assert_eq!(r["output"][2]["call_id"], "call_1");
        assert_eq!(r["usage"]["output_tokens"], 4);
        assert_eq!(r["status"], "completed");
        let stored = w.as_messages();
        let Message::Assistant { calls, .. } = &stored[0] else {
            panic!("{stored:?}")
        };
        assert_eq!(calls[0].arguments, "{\"a\":1}");
        let mut w = ResponsesWriter::new(Arc::new(Meta::default()), None);
        w.text(&mut BytesMut::new(), "cut");
        w.set_finish("length", None);
        let r = w.complete(&mut BytesMut::new());
        assert_eq!(
            (
                r["status"].as_str(),
                r["incomplete_details"]["reason"].as_str()
            ),
            (Some("incomplete"), Some("max_output_tokens"))
        );
    }
}
