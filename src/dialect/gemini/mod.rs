//! The Gemini native dialect (`generateContent` / `streamGenerateContent?alt=sse`).
