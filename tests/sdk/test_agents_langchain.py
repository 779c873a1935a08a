"""Agent frameworks against the proxy (`demo`, simulated Venice scripted over SIM_URL): the
OpenAI Agents SDK with its default (Responses API) model running a two-tool agent to the
end, and LangChain's ChatOpenAI with bind_tools (invoke and stream) and
with_structured_output."""

import os

import pydantic
from openai import AsyncOpenAI

from simctl import MODEL, qwen_call, script


def test_agents_sdk_two_tool_agent():
    from agents import (Agent, Runner, function_tool, set_default_openai_client,
                        set_tracing_disabled)

    set_tracing_disabled(True)
    set_default_openai_client(AsyncOpenAI(max_retries=0), use_for_tracing=False)
    ran = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        ran.append(("get_weather", city))
        return f"sunny, 21 °C in {city}"

    @function_tool
    def get_time(city: str) -> str:
        """Local time in a city."""
        ran.append(("get_time", city))
        return f"14:05 in {city}"

    script(qwen_call("get_weather", city="Paris") + "\n" + qwen_call("get_time", city="Paris"),
           "In Paris it is sunny and 21 °C; the time is 14:05.")
    agent = Agent(name="Concierge", instructions="Answer with the tools.", tools=[get_weather, get_time],
                  model=MODEL)
    result = Runner.run_sync(agent, "What's the weather and the time in Paris?")
    assert result.final_output == "In Paris it is sunny and 21 °C; the time is 14:05."
    assert sorted(ran) == [("get_time", "Paris"), ("get_weather", "Paris")]


def llm():
    from langchain_openai import ChatOpenAI
    return ChatOpenAI(model=MODEL, base_url=os.environ["OPENAI_BASE_URL"], api_key="unused",
                      max_retries=0)


class GetWeather(pydantic.BaseModel):
    """Current weather for a city."""
    city: str


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_langchain_bind_tools_invoke_and_stream():
    bound = llm().bind_tools([GetWeather])
    script(qwen_call("GetWeather", city="Oslo"), qwen_call("GetWeather", city="Lima"))
    msg = bound.invoke("Weather in Oslo?")
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("GetWeather", {"city": "Oslo"})]
    merged = None
    for chunk in bound.stream("Weather in Lima?"):
        merged = chunk if merged is None else merged + chunk
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("GetWeather", {"city": "Lima"})]


def test_langchain_structured_output():
    script('{"name": "Ada", "age": 36}')
    person = llm().with_structured_output(Person).invoke("Who wrote the first program?")
    assert person == Person(name="Ada", age=36)
