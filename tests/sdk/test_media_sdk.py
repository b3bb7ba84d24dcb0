"""Media endpoints through switchyard with the official `openai` SDK: embeddings (OpenAI-compatible
and Gemini native, translated), image generation, speech to text (multipart uploads, 20 MiB
byte-exact, fallback on 429 and 5xx) and text to speech (streamed). Each checks the cost in the
ledger.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sqlite3
import struct
import time
from decimal import Decimal

import httpx
import pytest


def script_fault(gateway, fault: str, count: int = 1) -> None:
    """The mock fails its next `count` provider requests with `fault`."""
    r = httpx.post(
        f"http://127.0.0.1:{gateway.mock.port}/mock/fault",
        json={"fault": fault, "count": count},
        timeout=5,
    )
    assert r.status_code == 200, r.text


def ledger_row(gateway, request_id: str) -> dict:
    """The ledger row of one request (the writer flushes in batches: poll briefly)."""
    path = gateway.config_path.with_name("switchyard-ledger.db")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists():
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            con.row_factory = sqlite3.Row
            try:
                row = con.execute(
                    "SELECT * FROM requests WHERE request_id = ?", (request_id,)
                ).fetchone()
            except sqlite3.OperationalError:
                row = None
            finally:
                con.close()
            if row is not None:
                return dict(row)
        time.sleep(0.1)
    raise AssertionError(f"no ledger row for {request_id}")


def wav(seconds: float, rate: int = 16_000, fill: bytes | None = None) -> bytes:
    n = int(seconds * rate) * 2
    data = fill[:n] if fill is not None else bytes(n)
    head = b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16
    ) + b"data" + struct.pack("<I", n)
    return head + data


# ---------------------------------------------------------------------------------- embeddings


def test_embeddings_gemini_native_translated_with_dimensions_and_base64(oai, gateway):
    raw = oai.embeddings.with_raw_response.create(
        model="gemini/gemini-embedding-001", input=["first text", "second"], dimensions=4
    )
    assert raw.status_code == 200
    assert raw.headers["x-switchyard-provider"] == "gemini"
    res = raw.parse()
    assert [d.index for d in res.data] == [0, 1]
    # The SDK asked for base64 and decoded it: 4 floats each, unit-ish vectors from the mock.
    assert all(len(d.embedding) == 4 for d in res.data)
    assert res.data[0].embedding != res.data[1].embedding
    assert res.usage.prompt_tokens > 0
    # Deterministic: the same text gives the same vector.
    again = oai.embeddings.create(model="gemini/gemini-embedding-001", input="first text", dimensions=4)
    assert again.data[0].embedding == res.data[0].embedding
    floats = oai.embeddings.create(
        model="gemini/gemini-embedding-001", input="first text", dimensions=4, encoding_format="float"
    )
    assert floats.data[0].embedding == pytest.approx(res.data[0].embedding, rel=1e-6)
    row = ledger_row(gateway, raw.headers["x-switchyard-request-id"])
    assert row["endpoint"] == "embeddings" and row["unit"] == "tokens"
    assert row["estimated"] == 1  # Gemini reports no token counts
    assert Decimal(row["cost_usd"]) == Decimal(row["input_tokens"]) * Decimal("0.15") / 1_000_000


def test_embeddings_openai_compatible_cost_per_input_token(oai, gateway):
    raw = oai.embeddings.with_raw_response.create(model="emb", input="hello embeddings world")
    assert raw.headers["x-switchyard-provider"] == "mistral"
    res = raw.parse()
    cost = Decimal(raw.headers["x-switchyard-cost-usd"])
    assert cost == Decimal(res.usage.prompt_tokens) * Decimal("0.10") / 1_000_000
    row = ledger_row(gateway, raw.headers["x-switchyard-request-id"])
    assert row["unit"] == "tokens" and row["quantity"] == res.usage.prompt_tokens
    assert Decimal(row["cost_usd"]) == cost


def mock_requests(gateway) -> int:
    r = httpx.get(f"http://127.0.0.1:{gateway.mock.port}/mock/stats", timeout=5)
    return r.json()["requests"]


@pytest.mark.parametrize(
    "model,provider", [("emb", "mistral"), ("gemini/gemini-embedding-001", "gemini")]
)
def test_embeddings_are_cached_on_request_and_a_hit_reaches_no_provider(
    oai, gateway, model, provider
):
    cache = {"x-switchyard-cache": "ttl=600"}
    text = f"cache me please ({model})"
    first = oai.embeddings.with_raw_response.create(
        model=model, input=[text, "and me"], dimensions=4, extra_headers=cache
    )
    assert first.headers["x-switchyard-cache"] == "miss"
    assert first.headers["x-switchyard-provider"] == provider
    before = mock_requests(gateway)
    hit = oai.embeddings.with_raw_response.create(
        model=model, input=[text, "and me"], dimensions=4, extra_headers=cache
    )
    assert hit.headers["x-switchyard-cache"] == "hit"
    assert mock_requests(gateway) == before, "a hit reaches no provider"
    # The stored answer is the client's JSON whichever provider made it (Gemini's translated).
    assert hit.headers["x-switchyard-provider"] == provider
    assert [d.embedding for d in hit.parse().data] == [d.embedding for d in first.parse().data]
    assert hit.parse().usage.prompt_tokens == first.parse().usage.prompt_tokens
    # A hit costs nothing; it saved what the stored answer cost.
    row = ledger_row(gateway, hit.headers["x-switchyard-request-id"])
    paid = ledger_row(gateway, first.headers["x-switchyard-request-id"])
    assert row["cache_hit"] == 1 and Decimal(row["cost_usd"]) == 0
    per_million = {"mistral": Decimal("0.10"), "gemini": Decimal("0.15")}[provider]
    tokens = hit.parse().usage.prompt_tokens
    assert Decimal(row["saved_usd"]) == Decimal(tokens) * per_million / 1_000_000 > 0
    if provider == "mistral":  # exact usage (Gemini reports none: both sides are estimates)
        assert Decimal(row["saved_usd"]) == Decimal(paid["cost_usd"])
    # Anything that changes the vectors is another entry.
    other = oai.embeddings.with_raw_response.create(
        model=model, input=[text, "and me"], dimensions=8, extra_headers=cache
    )
    assert other.headers["x-switchyard-cache"] == "miss"
    assert len(other.parse().data[0].embedding) == 8
    # Without asking, nothing is read from the cache.
    plain = oai.embeddings.with_raw_response.create(model=model, input=[text, "and me"], dimensions=4)
    assert "x-switchyard-cache" not in plain.headers
    assert mock_requests(gateway) == before + 2


# A 429 rests the key for a while: it runs last, after the tests that need mistral.
@pytest.mark.parametrize("fault", ["503", "429"])
def test_embeddings_fall_back_from_mistral_to_gemini(oai, gateway, fault):
    script_fault(gateway, fault)
    raw = oai.embeddings.with_raw_response.create(model="emb", input=["a", "b", "c"])
    assert raw.status_code == 200
    attempts = raw.headers["x-switchyard-attempts"]
    assert attempts.startswith(f"mistral/mistral-embed#0={fault}"), attempts
    assert raw.headers["x-switchyard-provider"] == "gemini"
    assert len(raw.parse().data) == 3


# -------------------------------------------------------------------------------------- images


def test_images_b64_json_passes_through(oai, gateway):
    raw = oai.images.with_raw_response.generate(
        model="openai/gpt-image-1", prompt="a small red square", n=2, size="1024x1024"
    )
    res = raw.parse()
    assert len(res.data) == 2
    png = base64.b64decode(res.data[0].b64_json)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # gpt-image-1 reports tokens: billed by tokens ($5 in, $40 out per million).
    usage = res.usage
    want = (Decimal(usage.input_tokens) * 5 + Decimal(usage.output_tokens) * 40) / 1_000_000
    assert Decimal(raw.headers["x-switchyard-cost-usd"]) == want
    row = ledger_row(gateway, raw.headers["x-switchyard-request-id"])
    assert row["unit"] == "images" and row["quantity"] == 2
    assert Decimal(row["cost_usd"]) == want


def test_images_url_priced_by_size_and_quality_with_fallback(oai, gateway):
    script_fault(gateway, "500")
    raw = oai.images.with_raw_response.generate(
        model="img", prompt="a cat", n=3, size="1792x1024", quality="hd", response_format="url"
    )
    assert raw.headers["x-switchyard-attempts"].startswith("xai/grok-2-image#0=500")
    assert raw.headers["x-switchyard-provider"] == "openai"
    res = raw.parse()
    assert [d.url for d in res.data][0].startswith("https://mock.invalid/images/")
    assert Decimal(raw.headers["x-switchyard-cost-usd"]) == Decimal("0.360")  # 3 x $0.12
    row = ledger_row(gateway, raw.headers["x-switchyard-request-id"])
    assert (row["unit"], row["quantity"], Decimal(row["cost_usd"])) == ("images", 3, Decimal("0.360"))


# ------------------------------------------------------------------------------ speech to text


def test_transcription_small_upload(oai, gateway):
    audio = wav(2.5)
    raw = oai.audio.transcriptions.with_raw_response.create(
        model="openai/whisper-1", file=("clip.wav", audio, "audio/wav")
    )
    res = raw.parse()
    assert res.text == f"transcribed {len(audio)} bytes"
    assert raw.headers["x-mock-model"] == "whisper-1"
    row = ledger_row(gateway, raw.headers["x-switchyard-request-id"])
    # 2.5 s billed as 3 s at $0.0001.
    assert (row["unit"], row["quantity"], Decimal(row["cost_usd"])) == ("seconds", 3, Decimal("0.0003"))


def test_translation_text_format_priced_from_the_file_header(oai, gateway):
    audio = wav(1.0)
    raw = oai.audio.translations.with_raw_response.create(
        model="groq-audio/whisper-large-v3", file=("de.wav", audio, "audio/wav"), response_format="text"
    )
    assert raw.http_response.text.strip() == f"transcribed {len(audio)} bytes"
    row = ledger_row(gateway, raw.headers["x-switchyard-request-id"])
    assert (row["endpoint"], row["unit"], row["quantity"]) == ("audio_translations", "seconds", 1)
    assert Decimal(row["cost_usd"]) == Decimal("0.0000308333")


# A 429 rests the groq key: it runs last, after the tests that need groq.
@pytest.mark.parametrize("fault", ["503", "429"])
def test_transcription_20_mib_byte_exact_with_fallback(oai, gateway, fault):
    noise = hashlib.shake_256(b"switchyard").digest(20 * 1024 * 1024)
    audio = wav(655.36, fill=noise)  # 20 MiB of samples + header
    assert len(audio) >= 20 * 1024 * 1024
    script_fault(gateway, fault)
    raw = oai.audio.transcriptions.with_raw_response.create(
        model="stt", file=("long.wav", io.BytesIO(audio), "audio/wav"), response_format="verbose_json"
    )
    attempts = raw.headers["x-switchyard-attempts"]
    assert attempts.startswith(f"groq-audio/whisper-large-v3-turbo#0={fault}"), attempts
    # The replay after the failure reached the provider byte-exact.
    assert raw.headers["x-mock-file-bytes"] == str(len(audio))
    assert raw.headers["x-mock-file-sha256"] == hashlib.sha256(audio).hexdigest()
    assert raw.headers["x-mock-model"] == "whisper-1"
    res = raw.parse()
    assert res.text == f"transcribed {len(audio)} bytes"
    assert res.duration == pytest.approx(655.36, abs=0.01)
    row = ledger_row(gateway, raw.headers["x-switchyard-request-id"])
    assert (row["unit"], row["quantity"]) == ("seconds", 656)
    assert Decimal(row["cost_usd"]) == Decimal("0.0656")
    assert row["attempt_count"] == 2


def test_transcription_without_model_field_is_a_clear_400(gateway):
    from sdk_helpers import GATEWAY_KEY

    r = httpx.post(
        f"{gateway.openai_base_url}/audio/transcriptions",
        headers={"authorization": f"Bearer {GATEWAY_KEY}"},
        data={"language": "en"},
        files={"file": ("a.wav", wav(0.1), "audio/wav")},
        timeout=10,
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert "model" in err["message"] and err["type"]


# ------------------------------------------------------------------------------ text to speech


def test_speech_streams_chunks_before_the_provider_finishes(oai, gateway):
    arrivals = []
    start = time.monotonic()
    with oai.audio.speech.with_streaming_response.create(
        model="tts",
        voice="alloy",
        input="Hello from the gateway.",
        extra_headers={"x-mock-itl-ms": "150", "x-mock-tokens": "8"},
    ) as resp:
        assert resp.headers["content-type"] == "audio/wav"
        request_id = resp.headers["x-switchyard-request-id"]
        audio = b""
        for chunk in resp.iter_bytes():
            arrivals.append(time.monotonic() - start)
            audio += chunk
    # 8 chunks 150 ms apart: the first audio arrived long before the last was produced.
    assert arrivals[0] < 0.5, arrivals
    assert arrivals[-1] - arrivals[0] > 0.8, arrivals
    assert audio.startswith(b"RIFF") and audio[8:12] == b"WAVE"
    assert len(audio) == 44 + 8 * 3200
    row = ledger_row(gateway, request_id)
    chars = len("Hello from the gateway.")
    assert (row["unit"], row["quantity"], row["stream"]) == ("characters", chars, 1)
    assert Decimal(row["cost_usd"]) == Decimal(chars) * Decimal("0.000015")
