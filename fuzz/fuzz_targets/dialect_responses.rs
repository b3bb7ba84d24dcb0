//! Decoding any body as a whole answer or as an error in each dialect, re-encoding it for
//! every dialect, and translating it whole from any dialect to any dialect never panics, and
//! what comes out is a JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::dialect::translate::{
    decode_error, decode_response, encode_error, encode_response, ResponseTranslator,
};
use switchyard::dialect::Dialect;

const DIALECTS: [Dialect; 4] = [
    Dialect::OpenAi,
    Dialect::Anthropic,
    Dialect::Gemini,
    Dialect::Responses,
];
/// A few statuses (each dialect maps them to error types); kept short: every one re-parses
/// the body.
const STATUSES: [u16; 5] = [0, 200, 429, 529, u16::MAX];

fn json_object(what: &str, body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert!(v.is_object(), "{what} is not a JSON object: {v}");
}

fuzz_target!(|data: &[u8]| {
    for from in DIALECTS {
        if let Ok(resp) = decode_response(from, data) {
            for to in DIALECTS {
                json_object("an encoded response", &encode_response(to, &resp));
            }
        }
        for status in STATUSES {
            let err = decode_error(from, status, data);
            for to in DIALECTS {
                json_object("an encoded error", &encode_error(to, &err));
            }
        }
        for to in DIALECTS {
            // 2xx: the answer is decoded; else the error is (the error path for one target).
            let statuses: &[u16] = if to == from { &[200, 503] } else { &[200] };
            for &status in statuses {
                let mut t = ResponseTranslator::whole(from, to, status);
                let (a, b) = data.split_at(data.len() / 2);
                assert!(t.feed(a).is_empty());
                assert!(t.feed(b).is_empty());
                let out = t.finish();
                json_object("a translated whole answer", &out);
                if t.failed_status().is_some() {
                    assert_eq!(status, 200, "only a 2xx answer can fail to translate");
                }
            }
        }
    }
});
