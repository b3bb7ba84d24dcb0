"""Constants and small assertion helpers shared by the SDK end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

GATEWAY_KEY = "sk-sy-test-key"
LIMITED_KEY = "sk-sy-limited"
WRONG_KEY = "sk-sy-definitely-not-a-key"
PROVIDER_KEY = "sk-mock-provider"
PROVIDER_KEY_ENV = "MOCK_KEY"

CLIENT_TIMEOUT_S = 30.0

# Anthropic error types by HTTP status (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


# --------------------------------------------------------------------------------------------
# gateway config
# --------------------------------------------------------------------------------------------


def gateway_config(gw_port: int, mock_port: int) -> str:
    return f"""\
# written by the switchyard SDK test suite (tests/sdk)
[server]
listen = "127.0.0.1:{gw_port}"

[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_keys = ["env:{PROVIDER_KEY_ENV}"]

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_keys = ["env:{PROVIDER_KEY_ENV}"]

# The same mock as `anthropic`, for tests that inject faults: their retries open these
# providers' circuit breakers, not the one every other test relies on. Error statuses go to
# `anthropic-faults`, streams cut mid-way to `anthropic-cuts`.
[[providers]]
name = "anthropic-faults"
kind = "anthropic"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_keys = ["env:{PROVIDER_KEY_ENV}"]

[[providers]]
name = "anthropic-cuts"
kind = "anthropic"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_keys = ["env:{PROVIDER_KEY_ENV}"]

[[providers]]
name = "gemini"
kind = "gemini-native"
base_url = "http://127.0.0.1:{mock_port}/v1beta"
api_keys = ["env:{PROVIDER_KEY_ENV}"]

[[providers]]
name = "groq"
kind = "groq"
base_url = "http://127.0.0.1:{mock_port}/openai/v1"
api_keys = ["env:{PROVIDER_KEY_ENV}"]
models = ["llama-3.3-70b-versatile"]

# Media providers (tests/sdk/test_media_sdk.py).
[[providers]]
name = "groq-audio"
kind = "groq"
base_url = "http://127.0.0.1:{mock_port}/openai/v1"
api_keys = ["env:{PROVIDER_KEY_ENV}"]

[[providers]]
name = "xai"
kind = "xai"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_keys = ["env:{PROVIDER_KEY_ENV}"]

[[providers]]
name = "mistral"
kind = "mistral"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_keys = ["env:{PROVIDER_KEY_ENV}"]

[[gateway_keys]]
name = "tests"
key = "{GATEWAY_KEY}"

[[gateway_keys]]
name = "limited"
key = "{LIMITED_KEY}"
models = ["chat"]

[[routes]]
name = "chat"
targets = ["openai/gpt-4o-mini"]

[[routes]]
name = "claude"
targets = ["anthropic/claude-sonnet-4-5"]

[[routes]]
name = "emb"
targets = ["mistral/mistral-embed", "gemini/gemini-embedding-001"]

[[routes]]
name = "img"
targets = ["xai/grok-2-image", "openai/dall-e-3"]

[[routes]]
name = "stt"
targets = ["groq-audio/whisper-large-v3-turbo", "openai/whisper-1"]

[[routes]]
name = "tts"
targets = ["openai/tts-1"]

# Cross-dialect routes: the client's SDK speaks one dialect, the target another.
[[routes]]
name = "gpt-for-anthropic-clients"
targets = ["openai/gpt-4o-mini"]
"""


def response_json(err: Any) -> Any:
    """The decoded JSON body of an SDK APIStatusError's HTTP response."""
    try:
        return err.response.json()
    except json.JSONDecodeError as e:
        raise AssertionError(
            f"error response is not JSON (status {err.response.status_code}): {err.response.text[:500]!r}"
        ) from e


def assert_openai_error_shape(err: Any) -> dict:
    """OpenAI dialect: {"error": {"message": str, "type": str, ...}}. Returns the inner object."""
    body = response_json(err)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), (
        f"expected OpenAI error shape {{'error': {{...}}}}, got {body!r}"
    )
    inner = body["error"]
    assert isinstance(inner.get("message"), str) and inner["message"], f"error.message missing: {body!r}"
    assert isinstance(inner.get("type"), str) and inner["type"], f"error.type missing: {body!r}"
    return inner


def assert_anthropic_error_shape(err: Any, expected_type: str | None = None) -> dict:
    """Anthropic dialect: {"type": "error", "error": {"type": str, "message": str}}."""
    body = response_json(err)
    assert isinstance(body, dict) and body.get("type") == "error", (
        f"expected Anthropic error shape {{'type': 'error', ...}}, got {body!r}"
    )
    inner = body.get("error")
    assert isinstance(inner, dict), f"error object missing: {body!r}"
    assert isinstance(inner.get("message"), str) and inner["message"], f"error.message missing: {body!r}"
    if expected_type is None:
        expected_type = ANTHROPIC_ERROR_TYPES.get(err.response.status_code)
    if expected_type is not None:
        assert inner.get("type") == expected_type, (
            f"expected error.type {expected_type!r} for status {err.response.status_code}, got {body!r}"
        )
    return inner
