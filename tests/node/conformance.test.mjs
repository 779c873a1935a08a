// The official OpenAI Node SDK against the proxy (`demo`, simulated Venice scripted over
// SIM_URL): chat streaming with tools, and the Responses API streaming. Run by
// tests/e2e/sdk.rs with OPENAI_BASE_URL and SIM_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

const MODEL = "e2ee-qwen3-6-35b-a3b";
const client = new OpenAI({ maxRetries: 0 });

async function script(...replies) {
  const r = await fetch(`${process.env.SIM_URL}/_sim/script`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ replies: replies.map((content) => ({ content })) }),
  });
  assert.equal(r.status, 200);
}

const call = (city) =>
  `<tool_call>\n<function=get_weather>\n<parameter=city>\n${city}\n</parameter>\n</function>\n</tool_call>`;

const parameters = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };

test("chat streaming with tools", async () => {
  await script(call("Paris"));
  const stream = await client.chat.completions.create({
    model: MODEL,
    stream: true,
    tools: [{ type: "function", function: { name: "get_weather", parameters } }],
    messages: [{ role: "user", content: "Weather in Paris?" }],
  });
  const calls = [];
  let finish;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    for (const d of choice?.delta?.tool_calls ?? []) {
      calls[d.index] ??= { id: d.id, name: "", args: "" };
      calls[d.index].name += d.function?.name ?? "";
      calls[d.index].args += d.function?.arguments ?? "";
    }
    finish = choice?.finish_reason ?? finish;
  }
  assert.equal(finish, "tool_calls");
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, "get_weather");
  assert.match(calls[0].id, /^call_/);
  assert.deepEqual(JSON.parse(calls[0].args), { city: "Paris" });
});

test("responses streaming", async () => {
  await script("Streamed from Node.", call("Rome"));
  const events = [];
  for await (const e of await client.responses.create({ model: MODEL, input: "hi", stream: true })) {
    events.push(e);
  }
  assert.equal(events[0].type, "response.created");
  assert.equal(events.at(-1).type, "response.completed");
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const text = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
  assert.equal(text, "Streamed from Node.");
  assert.equal(events.at(-1).response.output_text ?? text, "Streamed from Node.");

  const withTool = [];
  for await (const e of await client.responses.create({
    model: MODEL, input: "Weather in Rome?", stream: true,
    tools: [{ type: "function", name: "get_weather", parameters, strict: false }],
  })) {
    withTool.push(e);
  }
  const done = withTool.find((e) => e.type === "response.function_call_arguments.done");
  assert.deepEqual(JSON.parse(done.arguments), { city: "Rome" });
  const item = withTool.at(-1).response.output.find((o) => o.type === "function_call");
  assert.equal(item.name, "get_weather");
});
