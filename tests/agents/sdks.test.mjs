// Agent SDKs, unmodified, through the sidecar (`demo`, run by tests/e2e/agents.rs): each runs
// a tool loop — the simulated model calls `get_weather` in Qwen3.5's trained syntax, the SDK
// runs the tool, its result goes back encrypted, the model answers — streaming and not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { generateText, streamText, tool, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Agent, run, tool as agentTool, setDefaultOpenAIClient, setTracingDisabled } from '@openai/agents';
import { ChatOpenAI } from '@langchain/openai';
import { HumanMessage, ToolMessage } from '@langchain/core/messages';
import OpenAI from 'openai';

const BASE = process.env.PROXY_BASE_URL;
const SIM = process.env.SIM_BASE_URL;
const MODEL = process.env.MODEL;
const CALL = '<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>';
const FINAL = 'It is sunny in Paris.';

// The model's next two answers: the call, then the answer (for MODEL only).
async function script() {
  const replies = [CALL, FINAL].map((content) => ({ content, model: MODEL }));
  const r = await fetch(`${SIM}/_sim/script`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ replies }),
  });
  assert.equal(r.status, 200);
}

// The tool every SDK runs; records each city it was called for.
function weather() {
  const calls = [];
  return { calls, run: async ({ city }) => { calls.push(city); return `sunny in ${city}`; } };
}

const description = 'Current weather for a city';

for (const [name, model] of [
  ['AI SDK @ai-sdk/openai .responses()', () => createOpenAI({ baseURL: BASE, apiKey: 'unused' }).responses(MODEL)],
  ['AI SDK @ai-sdk/openai .chat()', () => createOpenAI({ baseURL: BASE, apiKey: 'unused' }).chat(MODEL)],
  ['AI SDK @ai-sdk/openai-compatible', () => createOpenAICompatible({ name: 'venice', baseURL: BASE, apiKey: 'unused' })(MODEL)],
]) {
  for (const streaming of [false, true]) {
    test(`${name} ${streaming ? 'streamText' : 'generateText'} with a tool`, async () => {
      await script();
      const w = weather();
      const args = {
        model: model(),
        tools: { get_weather: tool({ description, inputSchema: z.object({ city: z.string() }), execute: w.run }) },
        stopWhen: stepCountIs(3),
        prompt: 'What is the weather in Paris?',
      };
      const text = streaming ? await streamText(args).text : (await generateText(args)).text;
      assert.deepEqual(w.calls, ['Paris']);
      assert.equal(text, FINAL);
    });
  }
}

test('OpenAI Agents SDK (JS), streamed, with a tool', async () => {
  setDefaultOpenAIClient(new OpenAI({ baseURL: BASE, apiKey: 'unused' }));
  setTracingDisabled(true);
  await script();
  const w = weather();
  const agent = new Agent({
    name: 'forecaster', instructions: 'Answer weather questions.', model: MODEL,
    tools: [agentTool({ name: 'get_weather', description, parameters: z.object({ city: z.string() }), execute: w.run })],
  });
  const result = await run(agent, 'What is the weather in Paris?', { stream: true });
  for await (const _ of result) { /* drain the stream */ }
  await result.completed;
  assert.deepEqual(w.calls, ['Paris']);
  assert.equal(result.finalOutput, FINAL);
});

test('LangChain JS ChatOpenAI bindTools, invoke and stream', async () => {
  await script();
  const llm = new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: BASE } });
  const bound = llm.bindTools([{
    type: 'function',
    function: { name: 'get_weather', description, parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  }]);
  const question = new HumanMessage('What is the weather in Paris?');
  const first = await bound.invoke([question]);
  assert.equal(first.tool_calls.length, 1);
  assert.equal(first.tool_calls[0].name, 'get_weather');
  assert.deepEqual(first.tool_calls[0].args, { city: 'Paris' });
  const answer = new ToolMessage({ content: 'sunny in Paris', tool_call_id: first.tool_calls[0].id });
  let text = '';
  for await (const chunk of await bound.stream([question, first, answer])) text += chunk.content;
  assert.equal(text, FINAL);
});
