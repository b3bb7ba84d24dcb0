"""The official `openai` Python SDK against switchyard (OpenAI dialect, mock provider behind it)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from sdk_helpers import LIMITED_KEY

MESSAGES = [{"role": "user", "content": "Say hello."}]


def _header(raw, name: str) -> str | None:
    return raw.headers.get(name)


# --------------------------------------------------------------------------------------------
# non-streaming chat
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "chat"])
def test_chat_non_stream(oai, model):
    raw = oai.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    assert raw.status_code == 200
    completion = raw.parse()

    # what reached the provider
    assert _header(raw, "x-mock-model") == "gpt-4o-mini", "gateway must strip the provider prefix / resolve the route"
    assert _header(raw, "x-mock-auth") == "bearer", "OpenAI-kind providers are called with Authorization: Bearer"
    # what the gateway says about itself
    assert _header(raw, "x-switchyard-provider") == "openai"
    assert _header(raw, "x-switchyard-model") == "gpt-4o-mini"
    assert _header(raw, "x-switchyard-request-id"), "x-switchyard-request-id missing or empty"

    assert completion.choices, completion
    content = completion.choices[0].message.content
    assert isinstance(content, str) and content.strip(), completion
    assert content.startswith("Hello from gpt-4o-mini"), content
    assert completion.choices[0].finish_reason == "stop"

    usage = completion.usage
    assert usage is not None, "usage missing from non-stream response"
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_token_count_header(oai):
    """x-mock-tokens (a client header) reaches the mock and controls the completion length."""
    completion = oai.chat.completions.create(
        model="chat", messages=MESSAGES, extra_headers={"x-mock-tokens": "7"}
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7


# --------------------------------------------------------------------------------------------
# streaming chat
# --------------------------------------------------------------------------------------------


def _collect_stream(stream):
    """-> (text, [(t_monotonic, delta_text)], chunks)"""
    deltas, chunks = [], []
    for chunk in stream:
        now = time.monotonic()
        chunks.append(chunk)
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content:
                deltas.append((now, choice.delta.content))
    return "".join(d for _, d in deltas), deltas, chunks


def test_chat_stream_matches_non_stream_and_is_incremental(oai):
    headers = {"x-mock-tokens": "10", "x-mock-itl-ms": "50"}
    expected = oai.chat.completions.create(model="chat", messages=MESSAGES, extra_headers=headers)
    expected_text = expected.choices[0].message.content

    raw = oai.chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES, stream=True, extra_headers=headers
    )
    assert raw.status_code == 200
    assert raw.headers.get("content-type", "").startswith("text/event-stream"), raw.headers
    assert raw.headers.get("x-switchyard-provider") == "openai"
    assert raw.headers.get("x-mock-model") == "gpt-4o-mini"
    text, deltas, chunks = _collect_stream(raw.parse())

    assert text == expected_text
    assert len(deltas) >= 2, f"expected several content deltas, got {len(deltas)}"
    first, last = deltas[0][0], deltas[-1][0]
    assert first < last - 0.2, (
        f"stream was not delivered incrementally: first delta at +0s, last at +{last - first:.3f}s "
        "(10 tokens x 50 ms inter-token latency should spread them over ~0.45 s; is the gateway buffering?)"
    )
    # without stream_options.include_usage no chunk carries usage
    assert all(getattr(c, "usage", None) is None for c in chunks), [c.usage for c in chunks if c.usage]
    finish = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finish == ["stop"], finish


def test_chat_stream_include_usage(oai):
    stream = oai.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-mock-tokens": "5"},
    )
    text, deltas, chunks = _collect_stream(stream)
    assert text, "no content deltas"
    usage_chunks = [c for c in chunks if getattr(c, "usage", None) is not None]
    assert len(usage_chunks) == 1, f"expected exactly one usage chunk, got {len(usage_chunks)}"
    usage = usage_chunks[0].usage
    assert chunks[-1] is usage_chunks[0], "usage chunk must be the last chunk"
    assert usage_chunks[0].choices == []
    assert usage.completion_tokens == 5
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


# --------------------------------------------------------------------------------------------
# other providers / endpoints
# --------------------------------------------------------------------------------------------


def test_groq_provider_path_prefix(oai):
    raw = oai.chat.completions.with_raw_response.create(
        model="groq/llama-3.3-70b-versatile", messages=MESSAGES
    )
    assert raw.status_code == 200
    assert raw.headers.get("x-mock-model") == "llama-3.3-70b-versatile"
    assert raw.headers.get("x-switchyard-provider") == "groq"
    assert raw.headers.get("x-switchyard-model") == "llama-3.3-70b-versatile"
    assert raw.headers.get("x-mock-auth") == "bearer"
    content = raw.parse().choices[0].message.content
    assert content and "llama-3.3-70b-versatile" in content, content


def test_embeddings(oai):
    raw = oai.embeddings.with_raw_response.create(
        model="openai/text-embedding-3-small", input=["a", "b"]
    )
    assert raw.status_code == 200
    assert raw.headers.get("x-mock-model") == "text-embedding-3-small"
    assert raw.headers.get("x-switchyard-provider") == "openai"
    res = raw.parse()
    assert len(res.data) == 2
    assert [d.index for d in res.data] == [0, 1]
    for d in res.data:
        # the SDK asks for encoding_format=base64 and decodes it back into floats
        assert isinstance(d.embedding, list) and len(d.embedding) > 0
        assert all(isinstance(x, float) for x in d.embedding)
    assert len(res.data[0].embedding) == len(res.data[1].embedding)


def test_models_list(oai):
    ids = [m.id for m in oai.models.list()]
    assert "chat" in ids, ids
    assert "groq/llama-3.3-70b-versatile" in ids, ids
    assert len(ids) == len(set(ids)), f"duplicate model ids: {ids}"


def test_models_list_limited_key(make_openai):
    limited = make_openai(api_key=LIMITED_KEY)
    ids = [m.id for m in limited.models.list()]
    assert ids == ["chat"], f"key 'limited' may only see route 'chat', got {ids}"


# --------------------------------------------------------------------------------------------
# big bodies, tools, keep-alive
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size_mib", [2, 12])
def test_large_request_body(oai, size_mib):
    filler = ("0123456789abcdef" * 64 + "\n") * (size_mib * 1024 * 1024 // 1025)
    # The padding is a body field of its own, not prompt text: a prompt of megabytes does not
    # fit the model's context window, and routing refuses it (a 400 naming the filter).
    raw = oai.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-mock-tokens": "4"},
        extra_body={"pad": filler},
    )
    assert raw.status_code == 200
    sent = raw.http_request.content
    assert len(sent) > size_mib * 1024 * 1024 * 0.95
    assert b'"openai/gpt-4o-mini"' in sent
    assert raw.headers.get("x-mock-model") == "gpt-4o-mini"
    expected = len(sent) - len("openai/")
    got = raw.headers.get("x-mock-body-bytes")
    assert got is not None, "mock did not report x-mock-body-bytes"
    assert int(got) == expected, (
        f"upstream body was {got} bytes; expected {expected} (client body {len(sent)} minus the 'openai/' prefix)"
    )
    # ... and byte-for-byte the client's body with only the model name rewritten
    rewritten = sent.replace(b'"openai/gpt-4o-mini"', b'"gpt-4o-mini"', 1)
    assert raw.headers.get("x-mock-body-sha256") == hashlib.sha256(rewritten).hexdigest(), (
        "upstream body differs from the client body beyond the model rename"
    )
    assert raw.parse().choices[0].message.content


def test_tool_call(oai):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "Get the time",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]
    completion = oai.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=tools,
    )
    choice = completion.choices[0]
    calls = choice.message.tool_calls
    assert calls, f"expected a tool call, got {choice.message!r}"
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather", "mock calls the first tool"
    args = json.loads(call.function.arguments)
    assert isinstance(args, dict), args
    assert choice.finish_reason == "tool_calls"


def test_many_sequential_requests_keepalive(oai):
    request_ids = []
    for i in range(50):
        raw = oai.chat.completions.with_raw_response.create(
            model="chat",
            messages=[{"role": "user", "content": f"request {i}"}],
            extra_headers={"x-mock-tokens": "2"},
        )
        assert raw.status_code == 200, f"request {i} failed"
        assert raw.parse().choices[0].message.content, f"request {i}: empty content"
        request_ids.append(raw.headers.get("x-switchyard-request-id"))
    assert all(request_ids), "x-switchyard-request-id missing on some responses"
    assert len(set(request_ids)) == 50, "x-switchyard-request-id values are not unique"
