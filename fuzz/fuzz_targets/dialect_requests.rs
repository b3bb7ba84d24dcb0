//! Decoding any body as a request in each dialect, and encoding whatever decodes into every
//! dialect, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::dialect::canonical::TranslateOptions;
use switchyard::dialect::translate::{decode_request, encode_request};
use switchyard::dialect::Dialect;

const DIALECTS: [Dialect; 4] = [
    Dialect::OpenAi,
    Dialect::Anthropic,
    Dialect::Gemini,
    Dialect::Responses,
];

/// Top-level names an operator may list in `translation.drop`: with them dropped, decoders
/// and encoders go past the fields they would otherwise reject.
const DROPPABLE: &[&str] = &[
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "top_k",
    "tools",
    "tool_choice",
    "toolConfig",
    "messages",
    "contents",
    "system",
    "systemInstruction",
    "safetySettings",
    "generationConfig",
    "response_format",
    "metadata",
    "thinking",
    "reasoning_effort",
    "service_tier",
    "store",
    "stop",
    "input",
    "instructions",
    "text",
    "reasoning",
    "include",
    "background",
    "conversation",
    "prompt",
    "max_tool_calls",
];

fuzz_target!(|data: &[u8]| {
    let lenient = TranslateOptions {
        drop: DROPPABLE.iter().map(|s| (*s).to_owned()).collect(),
    };
    for opts in [&TranslateOptions::default(), &lenient] {
        for from in DIALECTS {
            let Ok(req) = decode_request(from, data, opts) else {
                continue;
            };
            for to in DIALECTS {
                let model = if req.model.is_empty() {
                    "m"
                } else {
                    req.model.as_str()
                };
                if let Ok(body) = encode_request(to, &req, model, opts) {
                    // What an encoder writes is JSON.
                    json_object_check(&body);
                }
            }
        }
    }
});

fn json_object_check(body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("an encoded request is not JSON ({e}): {body:?}"));
    assert!(
        v.is_object(),
        "an encoded request is not a JSON object: {v}"
    );
}
