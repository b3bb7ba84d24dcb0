"""Google's `google-genai` SDK through the gateway, with only `http_options.base_url` set.

The SDK speaks Gemini's own API (`/v1/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`, key in `x-goog-api-key`). The gateway serves it for every
target: here OpenAI-kind and Anthropic targets (translated) and a Gemini target (passed
through), streamed and not, with function calls and their responses.
"""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from sdk_helpers import CLIENT_TIMEOUT_S, GATEWAY_KEY, WRONG_KEY

TARGETS = {
    "openai/gpt-4o-mini": "openai",
    "anthropic/claude-sonnet-4-5": "anthropic",
    "gemini/gemini-2.5-flash": "gemini",
    "chat": "openai",
}

WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={"city": types.Schema(type=types.Type.STRING)},
                required=["city"],
            ),
        )
    ]
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


@pytest.fixture(scope="module", params=["v1", "v1beta"])
def gclient(gateway, request):
    options = types.HttpOptions(base_url=gateway.url, timeout=int(CLIENT_TIMEOUT_S * 1000))
    if request.param == "v1beta":
        options.api_version = "v1beta"
    c = genai.Client(api_key=GATEWAY_KEY, http_options=options)
    yield c
    c.close()


@pytest.mark.parametrize("model", list(TARGETS))
def test_generate_content(gclient, model):
    r = gclient.models.generate_content(
        model=model,
        contents="Say hello.",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=200),
    )
    assert r.text.startswith("Hello from")
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata.prompt_token_count > 0
    assert r.usage_metadata.candidates_token_count > 0
    assert r.sdk_http_response.headers.get("x-switchyard-provider") == TARGETS[model]


@pytest.mark.parametrize("model", list(TARGETS))
def test_generate_content_stream(gclient, model):
    chunks = list(
        gclient.models.generate_content_stream(
            model=model, contents="Say hello.",
            config=types.GenerateContentConfig(max_output_tokens=200),
        )
    )
    assert len(chunks) > 2, "text arrives in pieces"
    text = "".join(c.text or "" for c in chunks)
    assert text.startswith("Hello from")
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count > 0


@pytest.mark.parametrize("model", list(TARGETS))
@pytest.mark.parametrize("stream", [False, True])
def test_function_call_round_trip(gclient, model, stream):
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")])
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AFC)
    if stream:
        chunks = list(gclient.models.generate_content_stream(model=model, contents=[question], config=config))
        calls = [fc for c in chunks for fc in (c.function_calls or [])]
        turn = types.Content(role="model", parts=[types.Part(function_call=fc) for fc in calls])
    else:
        r = gclient.models.generate_content(model=model, contents=[question], config=config)
        calls = r.function_calls
        turn = r.candidates[0].content
    assert [c.name for c in calls] == ["get_weather"]
    assert calls[0].args["city"]
    answer = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name="get_weather", response={"output": "Sunny"})],
    )
    r = gclient.models.generate_content(model=model, contents=[question, turn, answer], config=config)
    assert r.text.startswith("Hello from")


def test_upper_case_schemas_and_url_safe_inline_bytes_are_accepted(gclient):
    # Bytes that base64-encode to `-` and `_` in the URL-safe alphabet pydantic uses.
    image = types.Part.from_bytes(data=bytes([0xFB, 0xFF, 0xBF] * 20), mime_type="image/png")
    config = types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=types.Schema(
            type=types.Type.OBJECT, properties={"answer": types.Schema(type=types.Type.STRING)}
        ),
    )
    for model in ("anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"):
        r = gclient.models.generate_content(
            model=model, contents=[image, "What is this?"], config=config
        )
        assert r.text


def test_models_list_names_what_the_key_may_call(gclient):
    names = [m.name for m in gclient.models.list()]
    assert "models/chat" in names
    assert "models/groq/llama-3.3-70b-versatile" in names


def test_errors_are_in_googles_shape(gateway):
    bad = genai.Client(api_key=WRONG_KEY, http_options=types.HttpOptions(base_url=gateway.url))
    with pytest.raises(errors.ClientError) as e:
        bad.models.generate_content(model="chat", contents="Hi")
    assert e.value.code == 401
    assert e.value.status == "UNAUTHENTICATED"
    good = genai.Client(api_key=GATEWAY_KEY, http_options=types.HttpOptions(base_url=gateway.url))
    with pytest.raises(errors.ClientError) as e:
        good.models.generate_content(model="nope/model", contents="Hi")
    assert e.value.code == 404 and e.value.status == "NOT_FOUND"
    with pytest.raises(errors.ServerError) as e:
        good.models.generate_content(
            model="anthropic-faults/claude-sonnet-4-5", contents="Hi",
            config=types.GenerateContentConfig(
                http_options=types.HttpOptions(headers={"x-mock-fault": "529"})
            ),
        )
    assert e.value.code == 529 and e.value.status == "UNAVAILABLE"


def test_models_list_of_a_limited_key(gateway):
    from sdk_helpers import LIMITED_KEY

    c = genai.Client(api_key=LIMITED_KEY, http_options=types.HttpOptions(base_url=gateway.url))
    assert [m.name for m in c.models.list()] == ["models/chat"]
