"""The OpenAI Agents SDK (`openai-agents`) running an agent through the gateway's Responses API.

The agent has one function tool and an Anthropic target: the model (the mock) calls the tool,
the SDK runs it and sends its result back, and the model answers; every turn is a Responses
request the gateway translates to Anthropic's Messages API.
"""

from __future__ import annotations

import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from sdk_helpers import CLIENT_TIMEOUT_S, GATEWAY_KEY

set_tracing_disabled(True)


@pytest.mark.parametrize("stream", [False, True])
def test_an_agent_with_one_function_tool_against_an_anthropic_target(gateway, stream):
    seen: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"Sunny in {city}"

    client = AsyncOpenAI(
        base_url=gateway.openai_base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=CLIENT_TIMEOUT_S
    )
    agent = Agent(
        name="weather",
        instructions="Answer with the weather.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="anthropic/claude-sonnet-4-5", openai_client=client),
    )
    config = RunConfig(tracing_disabled=True)
    if stream:
        import asyncio

        async def run():
            result = Runner.run_streamed(agent, "Weather in Paris?", run_config=config)
            async for _ in result.stream_events():
                pass
            return result

        result = asyncio.run(run())
    else:
        result = Runner.run_sync(agent, "Weather in Paris?", run_config=config)
    assert seen == ["Paris"], "the tool ran once, with the model's argument"
    assert result.final_output.startswith("Hello from claude-sonnet-4-5")
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"], kinds
    usage = result.context_wrapper.usage
    assert usage.requests == 2 and usage.input_tokens > 0 and usage.output_tokens > 0
