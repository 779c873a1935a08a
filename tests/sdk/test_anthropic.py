"""Anthropic's Python SDK against the proxy's Messages API (`demo`, which aliases `claude-*` to
its simulated E2EE model, scripted over SIM_URL): create, stream, tool use, tool result,
thinking, errors and token counting, as an application would use them."""

import os

import anthropic
import pytest

from simctl import qwen_call, script

CLAUDE = "claude-sonnet-5"
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
}


@pytest.fixture
def client():
    base = os.environ["OPENAI_BASE_URL"].removesuffix("/v1")
    return anthropic.Anthropic(base_url=base, api_key="unused", max_retries=0)


def test_create(client):
    script("Hello from the enclave.")
    m = client.messages.create(model=CLAUDE, max_tokens=256, system="Be brief.",
                               messages=[{"role": "user", "content": "hi"}])
    assert m.type == "message" and m.role == "assistant"
    assert m.model == CLAUDE
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == "Hello from the enclave."
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


def test_stream(client):
    script("Streamed through the enclave.")
    with client.messages.stream(model=CLAUDE, max_tokens=256,
                                messages=[{"role": "user", "content": "go"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Streamed through the enclave."
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_thinking(client):
    script(("It is 4.", "Two plus two is four."))
    m = client.messages.create(model=CLAUDE, max_tokens=2048,
                               thinking={"type": "enabled", "budget_tokens": 1024},
                               messages=[{"role": "user", "content": "2+2?"}])
    assert [b.type for b in m.content] == ["thinking", "text"]
    assert m.content[0].thinking == "Two plus two is four."
    script(("It is 4.", "Two plus two is four."))
    with client.messages.stream(model=CLAUDE, max_tokens=2048,
                                thinking={"type": "enabled", "budget_tokens": 1024},
                                messages=[{"role": "user", "content": "2+2?"}]) as stream:
        thinking = "".join(e.thinking for e in stream if e.type == "thinking")
        final = stream.get_final_message()
    assert thinking == "Two plus two is four."
    assert final.content[1].text == "It is 4."


@pytest.mark.parametrize("streaming", [False, True])
def test_tool_use_and_tool_result(client, streaming):
    script(qwen_call("get_weather", city="Paris"), "It is sunny in Paris.")
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    args = dict(model=CLAUDE, max_tokens=512, tools=[WEATHER], messages=messages)
    if streaming:
        with client.messages.stream(**args) as stream:
            m = stream.get_final_message()
    else:
        m = client.messages.create(**args)
    assert m.stop_reason == "tool_use"
    call = next(b for b in m.content if b.type == "tool_use")
    assert call.id.startswith("toolu_")
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    messages += [
        {"role": "assistant", "content": m.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": "sunny, 21C"}]},
    ]
    final = client.messages.create(model=CLAUDE, max_tokens=512, tools=[WEATHER],
                                   messages=messages)
    assert final.content[0].text == "It is sunny in Paris."
    assert final.stop_reason == "end_turn"


def test_errors_and_token_count(client):
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}}]}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "messages.0.content.0.type" in e.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="gpt-9", max_tokens=10,
                               messages=[{"role": "user", "content": "x"}])
    n = client.messages.count_tokens(model=CLAUDE, tools=[WEATHER],
                                     messages=[{"role": "user", "content": "hi " * 200}])
    assert n.input_tokens > 100
