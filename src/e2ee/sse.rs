//! Incremental Server-Sent Events parser. Bytes arrive split at any position; lines end in
//! LF or CRLF. Only `data` and `event` fields matter here; comments and other fields are
//! skipped.

/// The largest event (or unfinished line) kept: a real chunk is a few hundred bytes, so a
/// sender past this is not streaming an answer, and cannot make the proxy hold more.
pub(crate) const MAX_EVENT: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    data: String,
    event: String,
    has_data: bool,
    /// A line or an event grew past `MAX_EVENT`: the stream is not one to follow.
    oversized: bool,
}

/// One dispatched event; borrowed from the parser to avoid a copy per event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Event<'a> {
    /// `event:` field, empty for the default `message` type.
    pub(crate) event: &'a str,
    pub(crate) data: &'a str,
}

impl SseParser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Bytes kept for an event still being read (their allocation).
    pub(crate) fn kept(&self) -> usize {
        self.buf.capacity() + self.data.capacity()
    }

    /// Whether a line or an event grew past `MAX_EVENT` (what was kept of it is dropped).
    pub(crate) fn oversized(&self) -> bool {
        self.oversized
    }

    /// Feeds bytes and calls `on_event` for every event completed by them. Whole lines are
    /// read straight from `input`; only an unfinished last line is kept for the next call.
    pub(crate) fn push<E>(
        &mut self,
        input: &[u8],
        mut on_event: impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let result = if self.buf.is_empty() {
            self.lines(input, &mut on_event).map(|used| {
                self.buf.extend_from_slice(&input[used..]);
            })
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(input);
            let result = self.lines(&buf, &mut on_event);
            if let Ok(used) = result {
                buf.drain(..used);
            }
            self.buf = buf;
            result.map(drop)
        };
        if self.buf.len() > MAX_EVENT || self.data.len() > MAX_EVENT {
            self.oversized = true;
            self.buf = Vec::new();
            self.data = String::new();
        }
        result
    }

    /// Handles every complete line of `bytes`; returns how many bytes they took.
    fn lines<E>(
        &mut self,
        bytes: &[u8],
        on_event: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &bytes[start..]) {
            let end = start + nl;
            let line = &bytes[start..end];
            self.line(line.strip_suffix(b"\r").unwrap_or(line), on_event)?;
            start = end + 1;
        }
        Ok(start)
    }

    /// End of input: a last line without a newline and a last event without a blank line
    /// are still delivered (liberal in what we accept).
    pub(crate) fn finish<E>(
        &mut self,
        mut on_event: impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.buf.is_empty() {
            let mut line = std::mem::take(&mut self.buf);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line(&line, &mut on_event)?;
        }
        self.line(b"", &mut on_event)
    }

    fn line<E>(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if line.is_empty() {
            if self.has_data {
                let result = on_event(Event {
                    event: &self.event,
                    data: &self.data,
                });
                self.data.clear();
                self.event.clear();
                self.has_data = false;
                return result;
            }
            self.event.clear();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        // Strict first: its ASCII fast path is much quicker than the lossy scan.
        let value = match std::str::from_utf8(value) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(value),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.push_str(&value);
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, |e| {
                out.push((e.event.to_string(), e.data.to_string()));
                Ok::<_, ()>(())
            })
            .unwrap();
        }
        p.finish(|e| {
            out.push((e.event.to_string(), e.data.to_string()));
            Ok::<_, ()>(())
        })
        .unwrap();
        out
    }

    const STREAM: &[u8] = b": keepalive\r\ndata: {\"a\":1}\r\n\r\nevent: error\ndata: line1\ndata: line2\n\ndata:{\"b\":\"\xc3\xa9\"}\n\nid: 7\nretry: 10\n\ndata: [DONE]\n\n";

    fn expected() -> Vec<(String, String)> {
        vec![
            ("".into(), "{\"a\":1}".into()),
            ("error".into(), "line1\nline2".into()),
            ("".into(), "{\"b\":\"é\"}".into()),
            ("".into(), "[DONE]".into()),
        ]
    }

    #[test]
    fn whole_input() {
        assert_eq!(collect(&[STREAM]), expected());
    }

    #[test]
    fn every_split_position() {
        for i in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(i);
            assert_eq!(collect(&[a, b]), expected(), "split at {i}");
        }
        for i in 0..STREAM.len() {
            for j in i..=STREAM.len() {
                let parts = [&STREAM[..i], &STREAM[i..j], &STREAM[j..]];
                assert_eq!(collect(&parts), expected(), "split at {i},{j}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let parts: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(collect(&parts), expected());
    }

    /// Invalid UTF-8 is replaced, not fatal: the event's JSON parser judges what is left.
    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            collect(&[b"data: a\xffb\n", b"\n"]),
            vec![("".into(), "a\u{fffd}b".into())]
        );
    }

    #[test]
    fn unterminated_last_event_is_delivered() {
        assert_eq!(
            collect(&[b"data: [DONE]"]),
            vec![("".into(), "[DONE]".into())]
        );
        assert_eq!(collect(&[b"data: x\r"]), vec![("".into(), "x".into())]);
    }

    #[test]
    fn a_line_or_event_past_the_bound_is_not_kept() {
        let mut p = SseParser::new();
        let ok = |_: Event<'_>| Ok::<_, ()>(());
        p.push(b"data: small\n\n", ok).unwrap();
        assert!(!p.oversized());
        // One endless line, fed in pieces.
        let piece = vec![b'a'; 64 << 10];
        p.push(b"data: ", ok).unwrap();
        for _ in 0..(MAX_EVENT / piece.len() + 1) {
            p.push(&piece, ok).unwrap();
        }
        assert!(p.oversized());
        assert!(p.buf.capacity() < MAX_EVENT, "what was kept is dropped");
        // An event of many short data lines.
        let mut p = SseParser::new();
        let line = format!("data: {}\n", "b".repeat(1000));
        for _ in 0..(MAX_EVENT / 1000 + 2) {
            p.push(line.as_bytes(), ok).unwrap();
        }
        assert!(p.oversized());
    }
}
