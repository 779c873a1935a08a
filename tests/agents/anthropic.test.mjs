// Anthropic's TypeScript SDK, unmodified, against the sidecar's Messages API (`demo`, which
// aliases `claude-*` to its simulated model; run by tests/e2e/agents.rs): create, stream, tool
// use, tool result, thinking, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const BASE = process.env.PROXY_BASE_URL.replace(/\/v1$/, '');
const SIM = process.env.SIM_BASE_URL;
const CLAUDE = 'claude-sonnet-5';
const CALL = '<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>';
const WEATHER = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const client = new Anthropic({ baseURL: BASE, apiKey: 'unused', maxRetries: 0 });

// The model's next answers, as text or [text, reasoning].
async function script(...replies) {
  const items = replies.map((r) => (typeof r === 'string' ? { content: r } : { content: r[0], reasoning: r[1] }));
  const r = await fetch(`${SIM}/_sim/script`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ replies: items }),
  });
  assert.equal(r.status, 200);
}

test('messages.create', async () => {
  await script('Hello from the enclave.');
  const m = await client.messages.create({
    model: CLAUDE, max_tokens: 256, system: [{ type: 'text', text: 'Be brief.' }],
    messages: [{ role: 'user', content: 'hi' }],
  });
  assert.equal(m.model, CLAUDE);
  assert.deepEqual(m.content, [{ type: 'text', text: 'Hello from the enclave.' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
});

test('messages.stream with thinking', async () => {
  await script(['It is 4.', 'Two plus two is four.']);
  let text = '';
  let thinking = '';
  const stream = client.messages.stream({
    model: CLAUDE, max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: '2+2?' }],
  });
  stream.on('text', (t) => { text += t; });
  stream.on('thinking', (t) => { thinking += t; });
  const final = await stream.finalMessage();
  assert.equal(text, 'It is 4.');
  assert.equal(thinking, 'Two plus two is four.');
  assert.deepEqual(final.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(final.stop_reason, 'end_turn');
});

for (const streaming of [false, true]) {
  test(`tool use and tool result (${streaming ? 'stream' : 'create'})`, async () => {
    await script(CALL, 'It is sunny in Paris.');
    const messages = [{ role: 'user', content: 'Weather in Paris?' }];
    const args = { model: CLAUDE, max_tokens: 512, tools: [WEATHER], messages };
    const m = streaming ? await client.messages.stream(args).finalMessage() : await client.messages.create(args);
    assert.equal(m.stop_reason, 'tool_use');
    const call = m.content.find((b) => b.type === 'tool_use');
    assert.match(call.id, /^toolu_/);
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.input, { city: 'Paris' });
    messages.push({ role: 'assistant', content: m.content });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny, 21C' }] });
    const final = await client.messages.create({ model: CLAUDE, max_tokens: 512, tools: [WEATHER], messages });
    assert.equal(final.content[0].text, 'It is sunny in Paris.');
  });
}

test('errors are the SDK\'s error classes', async () => {
  await assert.rejects(
    client.messages.create({ model: 'gpt-9', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.error.error.type === 'not_found_error',
  );
  await assert.rejects(
    client.messages.create({
      model: CLAUDE, max_tokens: 1,
      messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }] }],
    }),
    (e) => e instanceof Anthropic.BadRequestError && e.message.includes('messages.0.content.0.type'),
  );
});
