"""Cross-dialect end to end: the official SDK of one dialect calling a target of another.

The `anthropic` SDK calls OpenAI and Gemini-native targets, and the `openai` SDK calls Anthropic
and Gemini-native targets, streamed and not, with (parallel) tool calls. The mock's answers are
deterministic, so each translated result is compared with what the target's own dialect gives.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from sdk_helpers import assert_anthropic_error_shape, assert_openai_error_shape

PARALLEL = {"x-mock-parallel-tools": "1"}
QUESTION = [{"role": "user", "content": "Weather in Paris and the time in Tokyo?"}]

OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Time in a zone",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
        },
    },
]
ANTHROPIC_TOOLS = [
    {"name": t["function"]["name"], "description": t["function"]["description"],
     "input_schema": t["function"]["parameters"]}
    for t in OPENAI_TOOLS
]


def _openai_reference_calls(oai):
    """What the OpenAI target calls for its own SDK: [(name, arguments dict)]."""
    c = oai.chat.completions.create(
        model="openai/gpt-4o-mini", messages=QUESTION, tools=OPENAI_TOOLS, extra_headers=PARALLEL
    )
    return [(t.function.name, json.loads(t.function.arguments)) for t in c.choices[0].message.tool_calls]


def _anthropic_reference_calls(ant):
    """What the Anthropic target calls for its own SDK: [(name, input dict)]."""
    m = ant.messages.create(
        model="anthropic/claude-sonnet-4-5", max_tokens=300, messages=QUESTION,
        tools=ANTHROPIC_TOOLS, extra_headers=PARALLEL,
    )
    return [(b.name, b.input) for b in m.content if b.type == "tool_use"]


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "gpt-for-anthropic-clients", "gemini/gemini-2.5-flash"])
def test_anthropic_sdk_text_from_other_dialects(ant, model):
    raw = ant.messages.with_raw_response.create(
        model=model, max_tokens=200, system="Be brief.", messages=[{"role": "user", "content": "Say hello."}]
    )
    msg = raw.parse()
    assert raw.headers.get("x-switchyard-provider") in ("openai", "gemini")
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0

    with ant.messages.stream(
        model=model, max_tokens=200, system="Be brief.", messages=[{"role": "user", "content": "Say hello."}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == msg.content[0].text
    assert final.usage.output_tokens == msg.usage.output_tokens


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "claude", "gemini/gemini-2.5-flash"])
def test_openai_sdk_text_from_other_dialects(oai, model):
    c = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello."}])
    assert c.object == "chat.completion"
    assert c.choices[0].message.content
    assert c.choices[0].finish_reason == "stop"
    assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0

    stream = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}], stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.content:
                pieces.append(ch.delta.content)
    assert "".join(pieces) == c.choices[0].message.content
    assert usage is not None and usage.completion_tokens == c.usage.completion_tokens


def test_anthropic_sdk_streams_parallel_tool_calls_from_an_openai_target(ant, oai):
    expected = _openai_reference_calls(oai)
    assert len(expected) == 2
    with ant.messages.stream(
        model="gpt-for-anthropic-clients", max_tokens=300, messages=QUESTION,
        tools=ANTHROPIC_TOOLS, extra_headers=PARALLEL,
    ) as stream:
        partial = {}
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial.setdefault(event.index, []).append(event.delta.partial_json)
        final = stream.get_final_message()
    calls = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert calls == expected
    assert all(b.id for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use"
    # The arguments arrived in pieces and each call's pieces add up to its input.
    assert any(len(p) > 1 for p in partial.values()), partial
    assert [json.loads("".join(p)) for _, p in sorted(partial.items())] == [c[1] for c in calls]


def test_openai_sdk_streams_parallel_tool_calls_from_an_anthropic_target(oai, ant):
    expected = _anthropic_reference_calls(ant)
    assert len(expected) == 2
    stream = oai.chat.completions.create(
        model="claude", messages=QUESTION, tools=OPENAI_TOOLS, stream=True, extra_headers=PARALLEL
    )
    calls, finish, pieces = {}, None, 0
    for chunk in stream:
        for ch in chunk.choices:
            for tc in ch.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"id": None, "name": None, "args": ""})
                if tc.id:
                    entry["id"] = tc.id
                if tc.function and tc.function.name:
                    entry["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    entry["args"] += tc.function.arguments
                    pieces += 1
            if ch.finish_reason:
                finish = ch.finish_reason
    got = [(c["name"], json.loads(c["args"])) for _, c in sorted(calls.items())]
    assert got == expected
    assert all(c["id"] for c in calls.values())
    assert finish == "tool_calls"
    assert pieces > 2, "arguments should stream in pieces"


def test_openai_sdk_tool_round_trip_through_an_anthropic_target(oai):
    first = oai.chat.completions.create(model="claude", messages=QUESTION, tools=OPENAI_TOOLS)
    call = first.choices[0].message.tool_calls[0]
    second = oai.chat.completions.create(
        model="claude",
        tools=OPENAI_TOOLS,
        messages=QUESTION
        + [
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "21C and sunny"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


def test_anthropic_sdk_tool_round_trip_through_a_gemini_target(ant):
    first = ant.messages.create(
        model="gemini/gemini-2.5-flash", max_tokens=300, messages=QUESTION, tools=ANTHROPIC_TOOLS
    )
    use = next(b for b in first.content if b.type == "tool_use")
    second = ant.messages.create(
        model="gemini/gemini-2.5-flash",
        max_tokens=300,
        tools=ANTHROPIC_TOOLS,
        messages=QUESTION
        + [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21C"}]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"


def test_errors_are_translated_into_the_clients_sdk_dialect(oai, ant):
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-mock-fault": "400"}
        )
    assert_openai_error_shape(ei.value)
    with pytest.raises(anthropic.NotFoundError) as ei:
        ant.messages.create(
            model="gpt-for-anthropic-clients", max_tokens=10, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-fault": "404"},
        )
    assert_anthropic_error_shape(ei.value, "not_found_error")
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}], n=2
        )
    inner = assert_openai_error_shape(ei.value)
    assert inner.get("param") == "n"
