"""A full agent loop with the official OpenAI Python SDK: the model calls a tool, the
client runs it and sends the result back, the model answers. Run once per tool-call family,
the simulated Venice scripted over its control endpoint (SIM_URL) to answer in that family's
own syntax. Run by tests/e2e/sdk.rs with OPENAI_BASE_URL and SIM_URL set."""

import json

import pytest
from openai import OpenAI

from simctl import script

# One model per family, and the call `get_weather(city="Paris")` in that family's syntax.
FAMILIES = {
    "qwen_xml": ("e2ee-qwen3-6-35b-a3b",
                 "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>"),
    "qwen": ("e2ee-qwen3-vl-30b-a3b-p",
             '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'),
    "glm": ("e2ee-glm-5-1",  # given the GLM-4.6 family by the test's configuration
            "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>"),
    "glm47": ("e2ee-glm-5-2-p",
              "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>"),
    "gemma4": ("e2ee-gemma-4-26b-a4b-uncensored-p",
               '<|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>'),
    "deepseek_dsml": ("e2ee-deepseek-v4-flash",
                      '<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n'
                      '<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n'
                      '</｜DSML｜invoke>\n</｜DSML｜tool_calls>'),
    "hermes": ("e2ee-gemma-3-27b-p",
               '<tool_call>\n{"arguments": {"city": "Paris"}, "name": "get_weather"}\n</tool_call>'),
}
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current temperature for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}]


def get_weather(city):
    return {"city": city, "temp_c": 18}


def run_loop(client, model, stream):
    messages = [{"role": "user", "content": "How warm is it in Paris?"}]
    for _ in range(3):
        if stream:
            calls, text, finish = {}, "", None
            for chunk in client.chat.completions.create(model=model, messages=messages, tools=TOOLS, stream=True):
                delta = chunk.choices[0].delta
                text += delta.content or ""
                for tc in delta.tool_calls or []:
                    c = calls.setdefault(tc.index, {"id": tc.id, "name": "", "arguments": ""})
                    c["name"] += tc.function.name or ""
                    c["arguments"] += tc.function.arguments or ""
                finish = chunk.choices[0].finish_reason or finish
            tool_calls = [{"id": c["id"], "type": "function",
                           "function": {"name": c["name"], "arguments": c["arguments"]}}
                          for _, c in sorted(calls.items())]
        else:
            r = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
            msg = r.choices[0].message
            text, finish = msg.content, r.choices[0].finish_reason
            tool_calls = [tc.model_dump() for tc in msg.tool_calls or []]
        if finish != "tool_calls":
            return text
        messages.append({"role": "assistant", "content": text or None, "tool_calls": tool_calls})
        for tc in tool_calls:
            args = json.loads(tc["function"]["arguments"])
            messages.append({"role": "tool", "tool_call_id": tc["id"],
                             "content": json.dumps(get_weather(**args))})
    raise AssertionError("the loop did not finish")


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("stream", [False, True], ids=["non_streaming", "streaming"])
def test_agent_loop(family, stream):
    model, call = FAMILIES[family]
    final = f"It is 18 °C in Paris ({family})."
    script(call, final)
    assert run_loop(OpenAI(max_retries=0), model, stream) == final
