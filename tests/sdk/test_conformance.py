"""Conformance of the official OpenAI Python SDK with the proxy (`demo`, simulated Venice
scripted over SIM_URL), sync and async: chat (plain, streaming, the stream() helper, tools),
structured outputs with parse() (including one corrected retry), and the Responses API
(plain, streaming, a function call and its output fed back, the stream() helper, parse()).
Every test asserts on what the user gets: content, calls, parsed objects, usage."""

import asyncio
import json

import pydantic
import pytest
from openai import AsyncOpenAI, OpenAI

from simctl import MODEL, qwen_call, script

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current temperature for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}
# The Responses API's flat tool shape.
WEATHER_FLAT = {"type": "function", **WEATHER["function"]}


class Person(pydantic.BaseModel):
    name: str
    age: int


@pytest.fixture
def client():
    return OpenAI(max_retries=0)


def chat_parse(client):
    # `chat.completions.parse` in current SDKs, `beta.chat.completions.parse` before.
    completions = client.chat.completions
    return completions.parse if hasattr(completions, "parse") else client.beta.chat.completions.parse


def test_chat_plain_and_streamed(client):
    script("Plain answer.", "Streamed answer.")
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Plain answer."
    assert r.usage.total_tokens > 0
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Streamed answer."
    assert chunks[-1].usage.completion_tokens > 0


def test_chat_stream_helper_with_tools(client):
    script(qwen_call("get_weather", city="Paris"))
    with client.chat.completions.stream(model=MODEL, tools=[WEATHER],
                                        messages=[{"role": "user", "content": "Weather in Paris?"}]) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_structured_output_parse_with_one_corrected_retry(client):
    # First answer misses `age`: the proxy retries with a correction, the second is valid.
    script('{"name": "Ada"}', 'Here you go:\n```json\n{"name": "Ada", "age": 36}\n```')
    r = chat_parse(client)(model=MODEL, response_format=Person,
                           messages=[{"role": "user", "content": "Who wrote the first program?"}])
    assert r.choices[0].message.parsed == Person(name="Ada", age=36)


def test_responses_plain_and_streamed(client):
    script(("Hello from the Responses API.", "Thinking briefly."), "Streamed response.")
    r = client.responses.create(model=MODEL, input="hi", instructions="Be brief.")
    assert r.status == "completed"
    assert r.output_text == "Hello from the Responses API."
    assert [o.type for o in r.output] == ["reasoning", "message"]
    assert r.usage.total_tokens > 0
    events = list(client.responses.create(model=MODEL, input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Streamed response."
    assert events[-1].response.output_text == "Streamed response."


def test_responses_function_call_and_its_output(client):
    script(qwen_call("get_weather", city="Paris"), "It is 18 °C in Paris.")
    first = client.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER_FLAT])
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    follow = client.responses.create(
        model=MODEL, tools=[WEATHER_FLAT],
        input=[{"role": "user", "content": "Weather in Paris?"}, *first.output,
               {"type": "function_call_output", "call_id": calls[0].call_id,
                "output": json.dumps({"temp_c": 18})}])
    assert follow.output_text == "It is 18 °C in Paris."


def test_responses_stream_helper_and_parse(client):
    script(qwen_call("get_weather", city="Rome"), '{"name": "Grace", "age": 85}')
    with client.responses.stream(model=MODEL, input="Weather in Rome?", tools=[WEATHER_FLAT]) as s:
        for _ in s:
            pass
        final = s.get_final_response()
    call = next(o for o in final.output if o.type == "function_call")
    assert json.loads(call.arguments) == {"city": "Rome"}
    parsed = client.responses.parse(model=MODEL, input="Who?", text_format=Person)
    assert parsed.output_parsed == Person(name="Grace", age=85)


def test_async_client():
    async def run():
        client = AsyncOpenAI(max_retries=0)
        script("Async plain.", "Async streamed.", "Async response.")
        r = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "Async plain."
        text = ""
        async for c in await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True):
            if c.choices:
                text += c.choices[0].delta.content or ""
        assert text == "Async streamed."
        r = await client.responses.create(model=MODEL, input="hi")
        assert r.output_text == "Async response."
    asyncio.run(run())
