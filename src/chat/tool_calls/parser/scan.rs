//! Text-mode scanning shared by the parsers: find an opening marker (`<tool_call>`, or a
//! bare `<function=` as Qwen's XML syntax is sometimes emitted), and hold back a tail that
//! could still become one (`<tool_c…`, `<func…`) so it is never streamed as text too early.

use super::whole::{DSML_OPEN, DSML_OPEN_V32, GEMMA_BARE, GEMMA_OPEN};
use super::{ParseEvent, FUNCTION, OPEN};

/// The opening markers of answer text, in the order they are tried at one position. Gemma
/// 4's bare `call:` (its special tokens dropped in decoding) counts only before an offered
/// tool's name, which its reader checks.
pub(crate) const MARKERS: [&str; 6] = [
    OPEN,
    FUNCTION,
    GEMMA_OPEN,
    DSML_OPEN,
    DSML_OPEN_V32,
    GEMMA_BARE,
];
/// The markers looked for in reasoning, where prose says "call:" too often to hold it back.
const REASONING_MARKERS: [&str; 5] = [OPEN, FUNCTION, GEMMA_OPEN, DSML_OPEN, DSML_OPEN_V32];

/// Emits what is safe as text; returns the marker consumed, if one was (the parser then
/// leaves its text state).
pub(crate) fn text_step(buf: &mut String, out: &mut Vec<ParseEvent>) -> Option<&'static str> {
    let (text, found) = take_text(buf);
    if !text.is_empty() {
        out.push(ParseEvent::Text(text));
    }
    found
}

/// Splits `buf` at the first complete marker: `(text before, Some(marker))`, the marker
/// removed. Without a marker, returns the text that is safe to emit now and keeps in `buf`
/// only a tail that is a proper prefix of a marker.
pub(crate) fn take_text(buf: &mut String) -> (String, Option<&'static str>) {
    take_text_of(buf, &MARKERS)
}

fn take_text_of(buf: &mut String, markers: &[&'static str]) -> (String, Option<&'static str>) {
    if let Some((at, marker)) = find_of(buf, markers) {
        let text = buf[..at].to_string();
        buf.drain(..at + marker.len());
        return (text, Some(marker));
    }
    let keep = markers
        .iter()
        .map(|m| partial_suffix(buf, m))
        .max()
        .unwrap_or(0);
    let emit_to = buf.len() - keep;
    let text = buf[..emit_to].to_string();
    buf.drain(..emit_to);
    (text, None)
}

/// Like `take_text`, but a marker found stays in `buf` (with everything after it): for
/// holding back raw text that may turn out to be a call. Returns the text safe to show now
/// and whether a marker was found.
pub(crate) fn hold_from_marker(buf: &mut String) -> (String, bool) {
    if let Some((at, _)) = find_of(buf, &REASONING_MARKERS) {
        return (buf.drain(..at).collect(), true);
    }
    let (text, _) = take_text_of(buf, &REASONING_MARKERS);
    (text, false)
}

/// Byte offsets of every marker in `s`, in order.
pub(crate) fn marker_positions(s: &str) -> Vec<usize> {
    let mut at: Vec<usize> = REASONING_MARKERS
        .iter()
        .flat_map(|m| s.match_indices(m).map(|(i, _)| i))
        .collect();
    at.sort_unstable();
    at
}

fn find_of(s: &str, markers: &[&'static str]) -> Option<(usize, &'static str)> {
    markers
        .iter()
        .filter_map(|m| s.find(m).map(|at| (at, *m)))
        .min_by_key(|(at, _)| *at)
}

/// Length of the longest suffix of `s` that is a proper prefix of `marker`.
pub(crate) fn partial_suffix(s: &str, marker: &str) -> usize {
    let max = marker.len().saturating_sub(1).min(s.len());
    (1..=max)
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && marker.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

/// Whether what is left after a call at the end of the output is only whitespace and the
/// start of a `</tool_call>` that was cut off (`</tool_c`): dropped, not shown as text.
pub(crate) fn is_closer_remnant(rest: &str) -> bool {
    let rest = rest.trim();
    let rest = rest.strip_prefix("```").unwrap_or(rest).trim();
    rest.is_empty() || (rest.starts_with("</") && super::CLOSE.starts_with(rest))
}

/// Whether `s` (already trimmed) could still grow into `marker`.
pub(crate) fn could_become(s: &str, marker: &str) -> bool {
    s.len() < marker.len() && marker.starts_with(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_only_a_possible_marker() {
        let mut b = String::from("hello <tool_c");
        assert_eq!(take_text(&mut b), ("hello ".to_string(), None));
        assert_eq!(b, "<tool_c");
        let mut b = String::from("a < b");
        assert_eq!(take_text(&mut b), ("a < b".to_string(), None));
        let mut b = String::from("x<tool_call>{");
        assert_eq!(take_text(&mut b), ("x".to_string(), Some(OPEN)));
        assert_eq!(b, "{");
        let mut b = String::from("é<");
        assert_eq!(take_text(&mut b), ("é".to_string(), None));
        let mut b = String::from("see <functi");
        assert_eq!(take_text(&mut b), ("see ".to_string(), None));
        let mut b = String::from("<function=f><tool_call>");
        assert_eq!(take_text(&mut b), (String::new(), Some(FUNCTION)));
    }
}
