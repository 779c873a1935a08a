//! Text-mode scanning shared by the parsers: find the opening marker, and hold back a tail
//! that could still become one (`<tool_c…`) so it is never streamed as text too early.

use super::{ParseEvent, OPEN};

/// The text state both parsers share: emits what is safe as text and says whether a
/// complete marker was consumed (the parser then leaves its text state).
pub fn text_step(buf: &mut String, out: &mut Vec<ParseEvent>) -> bool {
    let (text, found) = take_text(buf);
    if !text.is_empty() {
        out.push(ParseEvent::Text(text));
    }
    found
}

/// Splits `buf` at the first complete `OPEN` marker: `(text before, Some(after marker))`.
/// Without a marker, returns the text that is safe to emit now and keeps in `buf` only a
/// tail that is a proper prefix of the marker.
pub fn take_text(buf: &mut String) -> (String, bool) {
    if let Some(at) = buf.find(OPEN) {
        let text = buf[..at].to_string();
        buf.drain(..at + OPEN.len());
        return (text, true);
    }
    let keep = partial_suffix(buf, OPEN);
    let emit_to = buf.len() - keep;
    let text = buf[..emit_to].to_string();
    buf.drain(..emit_to);
    (text, false)
}

/// Length of the longest suffix of `s` that is a proper prefix of `marker`.
pub fn partial_suffix(s: &str, marker: &str) -> usize {
    let max = marker.len().saturating_sub(1).min(s.len());
    (1..=max)
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && marker.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_only_a_possible_marker() {
        let mut b = String::from("hello <tool_c");
        assert_eq!(take_text(&mut b), ("hello ".to_string(), false));
        assert_eq!(b, "<tool_c");
        let mut b = String::from("a < b");
        assert_eq!(take_text(&mut b), ("a < b".to_string(), false));
        let mut b = String::from("x<tool_call>{");
        assert_eq!(take_text(&mut b), ("x".to_string(), true));
        assert_eq!(b, "{");
        let mut b = String::from("é<");
        assert_eq!(take_text(&mut b), ("é".to_string(), false));
    }
}
