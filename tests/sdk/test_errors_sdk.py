"""Errors as the SDKs see them: gateway-generated errors must be in the caller's dialect and map
to the SDK's exception classes; provider errors pass through.  Every client here has
max_retries=0 (see conftest), so the SDK never retries."""

from __future__ import annotations

import re
import subprocess

import anthropic
import httpx
import openai
import pytest

from sdk_helpers import (
    GATEWAY_KEY,
    LIMITED_KEY,
    PROVIDER_KEY,
    PROVIDER_KEY_ENV,
    gateway_config,
    WRONG_KEY,
    assert_anthropic_error_shape,
    assert_openai_error_shape,
)

MESSAGES = [{"role": "user", "content": "Say hello."}]
MAX_TOKENS = 64


def _oai_chat(client, model="chat", **kw):
    return client.chat.completions.create(model=model, messages=MESSAGES, **kw)


def _ant_msg(client, model="claude", **kw):
    return client.messages.create(model=model, max_tokens=MAX_TOKENS, messages=MESSAGES, **kw)


# --------------------------------------------------------------------------------------------
# gateway authentication
# --------------------------------------------------------------------------------------------


def test_openai_wrong_gateway_key(make_openai):
    client = make_openai(api_key=WRONG_KEY)
    with pytest.raises(openai.AuthenticationError) as ei:
        _oai_chat(client)
    assert ei.value.status_code == 401
    assert_openai_error_shape(ei.value)
    # the SDK unwraps {"error": {...}} into e.body
    assert isinstance(ei.value.body, dict) and ei.value.body.get("type"), ei.value.body


def test_anthropic_wrong_gateway_key(make_anthropic):
    client = make_anthropic(api_key=WRONG_KEY)
    with pytest.raises(anthropic.AuthenticationError) as ei:
        _ant_msg(client)
    assert ei.value.status_code == 401
    assert_anthropic_error_shape(ei.value, "authentication_error")
    assert ei.value.type == "authentication_error"


def test_openai_wrong_key_on_models_list(make_openai):
    with pytest.raises(openai.AuthenticationError):
        make_openai(api_key=WRONG_KEY).models.list()


def test_provider_never_sees_gateway_key(oai, gateway):
    """The mock runs with --expect-key sk-mock-provider: a 200 through the gateway proves the
    provider key replaced the gateway key, since the mock rejects the gateway key itself."""
    with httpx.Client(trust_env=False, timeout=10) as direct:
        r = direct.post(
            f"http://127.0.0.1:{gateway.mock.port}/v1/chat/completions",
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            json={"model": "gpt-4o-mini", "messages": MESSAGES},
        )
    assert r.status_code == 401, f"control: mock should reject the gateway key, got {r.status_code}"
    raw = oai.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)
    assert raw.status_code == 200
    assert raw.headers.get("x-mock-auth") == "bearer"


# --------------------------------------------------------------------------------------------
# model resolution / authorization
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["nope/x", "no-such-route"])
def test_openai_unknown_model(oai, model):
    with pytest.raises(openai.NotFoundError) as ei:
        _oai_chat(oai, model=model)
    assert ei.value.status_code == 404
    assert_openai_error_shape(ei.value)


@pytest.mark.parametrize("model", ["nope/x", "no-such-route"])
def test_anthropic_unknown_model(ant, model):
    with pytest.raises(anthropic.NotFoundError) as ei:
        _ant_msg(ant, model=model)
    assert ei.value.status_code == 404
    assert_anthropic_error_shape(ei.value, "not_found_error")


def test_openai_limited_key_allowed_route(make_openai):
    """Control for the 403 tests below: the allow-listed route works for the limited key."""
    completion = _oai_chat(make_openai(api_key=LIMITED_KEY), model="chat")
    assert completion.choices[0].message.content


def test_openai_limited_key_forbidden_model(make_openai):
    client = make_openai(api_key=LIMITED_KEY)
    with pytest.raises(openai.PermissionDeniedError) as ei:
        _oai_chat(client, model="openai/gpt-4o-mini")
    assert ei.value.status_code == 403
    assert_openai_error_shape(ei.value)


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "claude"])
def test_anthropic_limited_key_forbidden_model(make_anthropic, model):
    client = make_anthropic(api_key=LIMITED_KEY)
    with pytest.raises(anthropic.PermissionDeniedError) as ei:
        _ant_msg(client, model=model)
    assert ei.value.status_code == 403
    assert_anthropic_error_shape(ei.value, "permission_error")


# --------------------------------------------------------------------------------------------
# provider faults pass through
# --------------------------------------------------------------------------------------------


def test_openai_provider_503_passthrough(oai):
    with pytest.raises(openai.InternalServerError) as ei:
        _oai_chat(oai, extra_headers={"x-mock-fault": "503"})
    assert ei.value.status_code == 503
    assert_openai_error_shape(ei.value)


def test_openai_provider_429_retry_after_passthrough(oai):
    with pytest.raises(openai.RateLimitError) as ei:
        _oai_chat(oai, extra_headers={"x-mock-fault": "429:retry-after=2"})
    assert ei.value.status_code == 429
    assert_openai_error_shape(ei.value)
    assert ei.value.response.headers.get("retry-after") == "2"


def test_anthropic_provider_529_passthrough(ant):
    with pytest.raises(anthropic.APIStatusError) as ei:
        _ant_msg(ant, extra_headers={"x-mock-fault": "529"})
    assert ei.value.status_code == 529
    assert_anthropic_error_shape(ei.value, "overloaded_error")
    assert ei.value.type == "overloaded_error"


def test_anthropic_provider_429_passthrough(ant):
    with pytest.raises(anthropic.RateLimitError) as ei:
        _ant_msg(ant, extra_headers={"x-mock-fault": "429"})
    assert ei.value.status_code == 429
    assert_anthropic_error_shape(ei.value, "rate_limit_error")


# --------------------------------------------------------------------------------------------
# `switchyard check`
# --------------------------------------------------------------------------------------------


def _check(sy_bin, config_text: str, tmp_path):
    path = tmp_path / "switchyard.toml"
    path.write_text(config_text)
    return subprocess.run(
        [str(sy_bin), "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", PROVIDER_KEY_ENV: PROVIDER_KEY},
    )


def test_check_accepts_suite_config(sy_bin, tmp_path):
    r = _check(sy_bin, gateway_config(18080, 18081), tmp_path)
    assert r.returncode == 0, f"check rejected the suite's config:\n{r.stdout}\n{r.stderr}"


def test_check_rejects_unknown_field(sy_bin, tmp_path):
    cfg = gateway_config(18080, 18081).replace("[server]\n", "[server]\nlisten_backlog_typo = 5\n", 1)
    assert "listen_backlog_typo" in cfg
    r = _check(sy_bin, cfg, tmp_path)
    assert r.returncode != 0, f"check accepted an unknown field:\n{r.stdout}\n{r.stderr}"
    assert re.search(r"listen_backlog_typo", r.stdout + r.stderr), (
        f"error should name the unknown field:\n{r.stdout}\n{r.stderr}"
    )
