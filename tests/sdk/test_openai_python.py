"""The official OpenAI Python SDK against the proxy's `demo` (simulated Venice echoes the
last user message). Run by tests/e2e/sdk.rs with OPENAI_BASE_URL set."""

import openai
import pytest
from openai import OpenAI

MODEL = "e2ee-qwen3-6-35b-a3b"


@pytest.fixture
def client():
    return OpenAI(max_retries=0)


def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids
    assert all(i.startswith("e2ee-") for i in ids)
    assert client.models.retrieve(MODEL).id == MODEL


def test_non_streaming(client):
    r = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello from the Python SDK"},
        ],
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "Hello from the Python SDK"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0


def test_streaming(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Streaming through the enclave"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Streaming through the enclave"
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_errors_are_typed(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, n=2, messages=[{"role": "user", "content": "x"}])
    assert e.value.param == "n"
