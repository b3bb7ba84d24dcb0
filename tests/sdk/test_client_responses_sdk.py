"""The OpenAI Responses API (`client.responses.*`) through the gateway, for every kind of target.

OpenAI-kind targets get the request passed through to their own `/responses`; Anthropic and
Gemini-native targets get it translated through the canonical model, and their answers come back
as Responses objects and event streams the SDK's own stream helper accepts. Conversation state
(`previous_response_id`) is kept by the gateway for every target.
"""

from __future__ import annotations

import json

import openai
import pytest

from sdk_helpers import assert_openai_error_shape

TARGETS = {
    "openai/gpt-4o-mini": "openai",
    "anthropic/claude-sonnet-4-5": "anthropic",
    "gemini/gemini-2.5-flash": "gemini",
}
PARALLEL = {"x-mock-parallel-tools": "1"}
WEATHER_TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "type": "function",
        "name": "get_time",
        "description": "Time in a zone",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
]


@pytest.mark.parametrize("model", list(TARGETS))
def test_create_answers_with_text_and_usage(oai, model):
    raw = oai.responses.with_raw_response.create(
        model=model, instructions="Be brief.", input="Say hello."
    )
    r = raw.parse()
    assert raw.headers.get("x-switchyard-provider") == TARGETS[model]
    assert r.object == "response" and r.status == "completed"
    assert r.id.startswith("resp_")
    assert r.output_text.startswith("Hello from")
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.instructions == "Be brief."


@pytest.mark.parametrize("model", list(TARGETS))
def test_stream_helper_accepts_the_event_sequence(oai, model):
    deltas = []
    kinds = []
    numbers = []
    with oai.responses.stream(model=model, instructions="Be brief.", input="Say hello.") as stream:
        for event in stream:
            kinds.append(event.type)
            numbers.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    for needed in (
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert needed in kinds, (needed, kinds)
    assert numbers == list(range(len(numbers))), numbers
    assert len(deltas) > 1, "text arrives in pieces"
    assert "".join(deltas) == final.output_text
    assert final.output_text.startswith("Hello from")
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", list(TARGETS))
def test_create_stream_true_ends_with_usage_in_the_completed_event(oai, model):
    events = list(oai.responses.create(model=model, input="Say hello.", stream=True))
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.usage.input_tokens > 0
    assert done.response.output[0].content[0].text.startswith("Hello from")


@pytest.mark.parametrize("model", list(TARGETS))
def test_tool_round_trip_with_previous_response_id(oai, model):
    first = oai.responses.create(
        model=model, input="Weather in Paris and the time in Tokyo?", tools=WEATHER_TOOLS,
        extra_headers=PARALLEL,
    )
    calls = [o for o in first.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].arguments)["city"]
    assert len({c.call_id for c in calls}) == 2
    second = oai.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=WEATHER_TOOLS,
        input=[
            {"type": "function_call_output", "call_id": c.call_id, "output": f"result of {c.name}"}
            for c in calls
        ],
    )
    assert second.status == "completed"
    assert second.output_text.startswith("Hello from"), second.output
    if TARGETS[model] != "openai":
        # (An OpenAI-kind target gets the conversation spelled out, so it echoes no id.)
        assert second.previous_response_id == first.id
    # The provider saw the whole conversation: the question and the calls came from the store.
    assert second.usage.input_tokens > first.usage.input_tokens


@pytest.mark.parametrize("model", list(TARGETS))
def test_streamed_tool_calls_and_a_streamed_second_turn(oai, model):
    with oai.responses.stream(model=model, input="Weather in Paris?", tools=WEATHER_TOOLS[:1]) as s:
        arg_deltas = [e.delta for e in s if e.type == "response.function_call_arguments.delta"]
        first = s.get_final_response()
    call = next(o for o in first.output if o.type == "function_call")
    assert "".join(arg_deltas) == call.arguments
    with oai.responses.stream(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}],
    ) as s:
        second = s.get_final_response()
    assert second.output_text.startswith("Hello from")


def test_a_conversation_moves_between_targets(oai):
    first = oai.responses.create(model="anthropic/claude-sonnet-4-5", input="My name is Ada.")
    second = oai.responses.create(
        model="gemini/gemini-2.5-flash", previous_response_id=first.id, input="What is my name?"
    )
    third = oai.responses.create(
        model="openai/gpt-4o-mini", previous_response_id=second.id, input="And again?"
    )
    assert second.usage.input_tokens > first.usage.input_tokens
    assert third.usage.input_tokens > second.usage.input_tokens


def test_unknown_previous_response_id_is_a_404_in_openai_shape(oai):
    with pytest.raises(openai.NotFoundError) as e:
        oai.responses.create(
            model="anthropic/claude-sonnet-4-5", previous_response_id="resp_unknown", input="Hi"
        )
    inner = assert_openai_error_shape(e.value)
    assert inner["param"] == "previous_response_id"
    assert inner["code"] == "previous_response_not_found"


def test_store_false_is_not_kept(oai):
    first = oai.responses.create(model="anthropic/claude-sonnet-4-5", input="Hi", store=False)
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(
            model="anthropic/claude-sonnet-4-5", previous_response_id=first.id, input="Again"
        )


@pytest.mark.parametrize("tool", ["web_search", "file_search", "computer_use_preview"])
def test_built_in_tools_a_target_cannot_run_are_a_400_naming_them(oai, tool):
    spec = {"type": tool}
    if tool == "file_search":
        spec["vector_store_ids"] = ["vs_1"]
    if tool == "computer_use_preview":
        spec.update(display_width=800, display_height=600, environment="linux")
    with pytest.raises(openai.BadRequestError) as e:
        oai.responses.create(model="anthropic/claude-sonnet-4-5", input="Hi", tools=[spec])
    inner = assert_openai_error_shape(e.value)
    assert inner["param"] == "tools[0]"
    assert tool in inner["message"]


def test_reasoning_summaries_stream_from_a_translated_target(oai):
    kinds = []
    with oai.responses.stream(
        model="anthropic/claude-sonnet-4-5",
        input="Think first.",
        reasoning={"effort": "medium", "summary": "auto"},
        max_output_tokens=4000,
        extra_headers={"x-mock-reasoning-tokens": "5"},
    ) as s:
        for e in s:
            kinds.append(e.type)
        final = s.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert "response.reasoning_summary_part.done" in kinds
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text
    assert final.usage.output_tokens_details.reasoning_tokens >= 0


def test_a_token_limit_is_an_incomplete_response(oai):
    r = oai.responses.create(
        model="anthropic/claude-sonnet-4-5", input="Talk.", max_output_tokens=3
    )
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"


def test_provider_errors_are_in_openai_shape(oai):
    with pytest.raises(openai.InternalServerError) as e:
        oai.responses.create(
            model="anthropic-faults/claude-sonnet-4-5", input="Hi",
            extra_headers={"x-mock-fault": "500"},
        )
    assert_openai_error_shape(e.value)


def test_a_stream_cut_by_the_provider_ends_with_an_error_the_sdk_raises(oai):
    seen = []
    with pytest.raises(openai.APIError) as e:
        with oai.responses.stream(
            model="anthropic-cuts/claude-sonnet-4-5", input="Hi",
            extra_headers={"x-mock-fault": "cut:after=4"},
        ) as s:
            for event in s:
                seen.append(event.type)
    assert seen and seen[0] == "response.created"
    assert "response.completed" not in seen
    assert e.value.message
