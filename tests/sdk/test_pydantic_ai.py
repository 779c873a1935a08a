"""pydantic-ai against the proxy (`demo`, simulated Venice scripted over SIM_URL): an agent
with a tool on both of its OpenAI models (Chat Completions and Responses), run whole and
streamed."""

import asyncio
import os

import pytest
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from simctl import MODEL, qwen_call, script

FINAL = "It is sunny in Paris."


def agent_with(model_class):
    provider = OpenAIProvider(base_url=os.environ["OPENAI_BASE_URL"], api_key="unused")
    agent = Agent(model_class(MODEL, provider=provider), instructions="Answer with the tool.")
    ran = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        ran.append(city)
        return f"sunny in {city}"

    return agent, ran


@pytest.mark.parametrize("model_class", [OpenAIChatModel, OpenAIResponsesModel])
def test_a_tool_loop_run_whole(model_class):
    agent, ran = agent_with(model_class)
    script(qwen_call("get_weather", city="Paris"), FINAL)
    result = agent.run_sync("What is the weather in Paris?")
    assert result.output == FINAL
    assert ran == ["Paris"]


@pytest.mark.parametrize("model_class", [OpenAIChatModel, OpenAIResponsesModel])
def test_a_tool_loop_streamed(model_class):
    agent, ran = agent_with(model_class)
    script(qwen_call("get_weather", city="Paris"), FINAL)

    async def streamed():
        async with agent.run_stream("What is the weather in Paris?") as result:
            return "".join([piece async for piece in result.stream_text(delta=True)])

    assert asyncio.run(streamed()) == FINAL
    assert ran == ["Paris"]
