"""The official `anthropic` Python SDK against switchyard (Anthropic dialect, mock provider behind it)."""

from __future__ import annotations

import itertools

import pytest

MESSAGES = [{"role": "user", "content": "Say hello."}]
MAX_TOKENS = 256


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "claude"])
def test_message_non_stream(ant, model):
    raw = ant.messages.with_raw_response.create(model=model, max_tokens=MAX_TOKENS, messages=MESSAGES)
    assert raw.status_code == 200
    msg = raw.parse()

    assert raw.headers.get("x-mock-model") == "claude-sonnet-4-5"
    assert raw.headers.get("x-mock-auth") == "x-api-key", "Anthropic providers are called with x-api-key"
    assert raw.headers.get("x-switchyard-provider") == "anthropic"
    assert raw.headers.get("x-switchyard-model") == "claude-sonnet-4-5"
    assert raw.headers.get("x-switchyard-request-id")

    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.content and msg.content[0].type == "text", msg
    text = msg.content[0].text
    assert text.startswith("Hello from claude-sonnet-4-5"), text
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0
    assert msg.usage.output_tokens > 0


def test_message_stream_matches_non_stream(ant):
    headers = {"x-mock-tokens": "12"}
    expected = ant.messages.create(
        model="claude", max_tokens=MAX_TOKENS, messages=MESSAGES, extra_headers=headers
    )
    expected_text = "".join(b.text for b in expected.content if b.type == "text")
    assert expected.usage.output_tokens == 12

    with ant.messages.stream(
        model="claude", max_tokens=MAX_TOKENS, messages=MESSAGES, extra_headers=headers
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1, f"expected several text deltas, got {pieces!r}"
    assert "".join(pieces) == expected_text
    assert final.usage.output_tokens == 12
    assert final.usage.input_tokens > 0
    assert final.stop_reason == "end_turn"
    assert "".join(b.text for b in final.content if b.type == "text") == expected_text


def test_message_stream_event_sequence(ant):
    """The raw SSE event sequence is the standard Anthropic one, passed through intact."""
    with ant.messages.stream(
        model="anthropic/claude-sonnet-4-5",
        max_tokens=MAX_TOKENS,
        messages=MESSAGES,
        extra_headers={"x-mock-tokens": "3"},
    ) as stream:
        kinds = [event.type for event in stream]
    # The SDK's MessageStream adds synthetic "text" events; keep the wire events only.
    wire = [k for k in kinds if k in {
        "message_start", "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    }]
    assert wire[0] == "message_start", kinds
    assert wire[1] == "content_block_start", kinds
    assert wire[-3:] == ["content_block_stop", "message_delta", "message_stop"], kinds
    assert wire.count("content_block_delta") >= 1, kinds


def test_models_list(ant):
    page = ant.models.list()
    ids = [m.id for m in itertools.islice(page, 1000)]
    assert "claude" in ids, ids
