//! What the judge is asked, and how its answer is read.
//!
//! The judge gets the conversation (the client's own request, before any variant's prompt)
//! and the answer(s), and must reply with JSON: `{"score": N}` (1 to 10) in score mode,
//! `{"winner": "A" | "B" | "tie"}` in pairwise mode, where A is the answer shown first. The
//! first JSON object in the reply is read (models like to wrap it in a code fence); anything
//! else is no verdict, never a guessed score.

use crate::config::experiments::JudgeMode;
use crate::dialect::canonical::{Part, Role};
use crate::dialect::translate::decode_request;
use crate::dialect::Dialect;
use serde_json::{json, Value};

/// The most characters of the conversation, and of each answer, shown to the judge.
pub const MAX_SECTION_CHARS: usize = 8000;

/// What the judge decided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Score(f64),
    /// Which answer won: the first shown (A), the second (B), or neither.
    Winner(Winner),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Winner {
    A,
    B,
    Tie,
}

impl Winner {
    pub fn as_str(self) -> &'static str {
        match self {
            Winner::A => "A",
            Winner::B => "B",
            Winner::Tie => "tie",
        }
    }
}

fn cut(s: &str) -> &str {
    match s.char_indices().nth(MAX_SECTION_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The client's conversation as plain text (`role: text` lines).
pub fn conversation(dialect: Dialect, body: &[u8]) -> String {
    let Ok(req) = decode_request(dialect, body, &Default::default()) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    let mut out = String::new();
    let text = |parts: &[Part]| -> String {
        parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.text.clone(),
                Part::Thinking { .. } | Part::RedactedThinking { .. } => String::new(),
                Part::Image(_) => "[image]".to_owned(),
                Part::ToolCall(_) => "[tool call]".to_owned(),
                Part::ToolResult(_) => "[tool result]".to_owned(),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    if !req.system.is_empty() {
        out.push_str(&format!("system: {}\n", text(&req.system)));
    }
    for m in &req.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        out.push_str(&format!("{role}: {}\n", text(&m.content)));
    }
    out
}

/// The judge's request, in the OpenAI dialect (translated for other targets by the caller).
/// `answers` holds one answer (score mode) or two, in the order shown (pairwise).
pub fn request(model: &str, mode: JudgeMode, rubric: &str, convo: &str, answers: &[&str]) -> Value {
    let (instructions, body) = match mode {
        JudgeMode::Score => (
            format!(
                "You are an impartial judge of an AI assistant's answer. {rubric}\n\
                 Reply with JSON only, nothing else: {{\"score\": N}} where N is a whole number \
                 from 1 (worst) to 10 (best)."
            ),
            format!(
                "## Conversation\n{}\n\n## Answer\n{}",
                cut(convo),
                cut(answers.first().copied().unwrap_or(""))
            ),
        ),
        JudgeMode::Pairwise => (
            format!(
                "You are an impartial judge comparing two answers of AI assistants to the same \
                 conversation. {rubric}\nReply with JSON only, nothing else: \
                 {{\"winner\": \"A\"}} if answer A is better, {{\"winner\": \"B\"}} if answer B \
                 is better, or {{\"winner\": \"tie\"}}."
            ),
            format!(
                "## Conversation\n{}\n\n## Answer A\n{}\n\n## Answer B\n{}",
                cut(convo),
                cut(answers.first().copied().unwrap_or("")),
                cut(answers.get(1).copied().unwrap_or(""))
            ),
        ),
    };
    json!({
        "model": model,
        "temperature": 0,
        "max_tokens": 100,
        "messages": [
            {"role": "system", "content": instructions},
            {"role": "user", "content": body},
        ],
    })
}

/// The first JSON object in `text`, if any parses.
fn first_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    for (start, _) in text.match_indices('{') {
        let mut de = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        if let Some(Ok(Value::Object(m))) = de.next() {
            return Some(m);
        }
    }
    None
}

/// Reads the judge's reply; `None` when it holds no valid verdict for `mode`.
pub fn parse(mode: JudgeMode, reply: &str) -> Option<Verdict> {
    let obj = first_object(reply)?;
    match mode {
        JudgeMode::Score => {
            let n = match obj.get("score")? {
                Value::Number(n) => n.as_f64()?,
                Value::String(s) => s.trim().parse::<f64>().ok()?,
                _ => return None,
            };
            (n.is_finite() && (1.0..=10.0).contains(&n)).then_some(Verdict::Score(n))
        }
        JudgeMode::Pairwise => {
            let w = obj.get("winner")?.as_str()?.trim();
            let w = if w.eq_ignore_ascii_case("a") {
                Winner::A
            } else if w.eq_ignore_ascii_case("b") {
                Winner::B
            } else if w.eq_ignore_ascii_case("tie") {
                Winner::Tie
            } else {
                return None;
            };
            Some(Verdict::Winner(w))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_winners_are_read_from_json_only() {
        let s = JudgeMode::Score;
        assert_eq!(parse(s, r#"{"score": 7}"#), Some(Verdict::Score(7.0)));
        assert_eq!(
            parse(s, "Sure!\n```json\n{\"score\": \"9\"}\n```"),
            Some(Verdict::Score(9.0))
        );
        assert_eq!(parse(s, r#"{"score": 11}"#), None);
        assert_eq!(parse(s, r#"{"score": 0}"#), None);
        assert_eq!(parse(s, "I would give it an 8."), None);
        assert_eq!(parse(s, r#"{"winner": "A"}"#), None);
        let p = JudgeMode::Pairwise;
        assert_eq!(
            parse(p, r#"{"winner":"b"}"#),
            Some(Verdict::Winner(Winner::B))
        );
        assert_eq!(
            parse(p, r#"{"winner":"tie"}"#),
            Some(Verdict::Winner(Winner::Tie))
        );
        assert_eq!(parse(p, r#"{"winner":"C"}"#), None);
        assert_eq!(parse(p, r#"{"note": 1} then {"winner": "A"}"#), None);
    }

    #[test]
    fn the_request_shows_the_conversation_and_answers_in_order() {
        let body = br#"{"model":"r","messages":[{"role":"system","content":"S"},{"role":"user","content":"Q?"}]}"#;
        let convo = conversation(Dialect::OpenAi, body);
        assert_eq!(convo, "system: S\nuser: Q?\n");
        let req = request(
            "j",
            JudgeMode::Pairwise,
            "Be fair.",
            &convo,
            &["first", "second"],
        );
        let user = req["messages"][1]["content"].as_str().unwrap();
        assert!(
            user.find("## Answer A\nfirst").unwrap() < user.find("## Answer B\nsecond").unwrap()
        );
        assert!(req["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Be fair."));
        let long = "x".repeat(MAX_SECTION_CHARS + 10);
        let req = request("j", JudgeMode::Score, "r", &long, &[&long]);
        let user = req["messages"][1]["content"].as_str().unwrap();
        assert!(user.len() < 2 * MAX_SECTION_CHARS + 40);
    }
}
