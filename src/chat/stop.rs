//! Stop sequences applied by the proxy to the decrypted answer, so the client's stop strings
//! never leave the pod in clear: the answer ends before the first occurrence of any of them
//! (which is not shown), as OpenAI's `stop` does. Text that could be the start of a stop
//! sequence is held back until the next piece says whether it is one.

use std::sync::Arc;

/// The stop sequences of one request (at most 4, non-empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stops(Vec<String>);

impl Stops {
    /// `None` when no non-empty sequence is given.
    pub fn new(sequences: Vec<String>) -> Option<Arc<Stops>> {
        let seqs: Vec<String> = sequences.into_iter().filter(|s| !s.is_empty()).collect();
        (!seqs.is_empty()).then(|| Arc::new(Stops(seqs)))
    }
}

/// The answer's text as it passes, cut at the first stop sequence.
#[derive(Debug)]
pub struct StopScanner {
    stops: Arc<Stops>,
    /// Text held back: a suffix that a stop sequence could start with.
    held: String,
}

impl StopScanner {
    pub fn new(stops: Arc<Stops>) -> Self {
        StopScanner {
            stops,
            held: String::new(),
        }
    }

    /// Takes the next piece of text: returns what may be shown now, and the stop sequence
    /// when one ended the answer (nothing from it on is shown).
    pub fn push(&mut self, text: &str) -> (String, Option<String>) {
        self.held.push_str(text);
        let first = self
            .stops
            .0
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, seq)) = first {
            let shown = self.held[..at].to_string();
            self.held.clear();
            return (shown, Some(seq.clone()));
        }
        let keep = self
            .stops
            .0
            .iter()
            .map(|s| partial_suffix(&self.held, s))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let shown = self.held[..cut].to_string();
        self.held.drain(..cut);
        (shown, None)
    }

    /// A new attempt at the answer: nothing held.
    pub fn reset(&mut self) {
        self.held.clear();
    }

    /// The answer ended without a stop sequence: the text held back.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of `seq`.
fn partial_suffix(text: &str, seq: &str) -> usize {
    (1..seq.len().min(text.len() + 1))
        .rev()
        .find(|&k| {
            seq.is_char_boundary(k)
                && text.is_char_boundary(text.len() - k)
                && text.ends_with(&seq[..k])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(stops: &[&str], pieces: &[&str]) -> (String, Option<String>) {
        let mut s =
            StopScanner::new(Stops::new(stops.iter().map(|s| s.to_string()).collect()).unwrap());
        let mut shown = String::new();
        for p in pieces {
            let (out, hit) = s.push(p);
            shown.push_str(&out);
            if hit.is_some() {
                return (shown, hit);
            }
        }
        shown.push_str(&s.flush());
        (shown, None)
    }

    #[test]
    fn the_answer_ends_before_the_first_stop_sequence() {
        assert_eq!(
            scan(&["END"], &["one two END three"]),
            ("one two ".into(), Some("END".into()))
        );
        // Split across pieces at every point.
        let text = "alpha beta\n\nObservation: gamma";
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(
                scan(&["\n\nObservation:"], &[a, b]),
                ("alpha beta".into(), Some("\n\nObservation:".into())),
                "cut at {cut}"
            );
        }
        // The earliest of several wins, whatever their order.
        assert_eq!(
            scan(&["zzz", "b"], &["a", "bzzz"]),
            ("a".into(), Some("b".into()))
        );
        // A near miss is shown once it is clearly no stop.
        assert_eq!(scan(&["END"], &["EN", "D?"]).1, Some("END".into()));
        assert_eq!(scan(&["END"], &["EN", "d"]), ("ENd".into(), None));
        assert_eq!(scan(&["END"], &["the E"]), ("the E".into(), None));
        // Multi-byte text around a multi-byte stop.
        assert_eq!(
            scan(&["—stop"], &["déjà vu —", "st", "op after"]),
            ("déjà vu ".into(), Some("—stop".into()))
        );
    }

    #[test]
    fn nothing_shown_is_ever_taken_back() {
        let mut s = StopScanner::new(Stops::new(vec!["ab".into()]).unwrap());
        assert_eq!(s.push("xa"), ("x".into(), None));
        assert_eq!(s.push("a"), ("a".into(), None));
        assert_eq!(s.push("b"), ("".into(), Some("ab".into())));
        assert!(Stops::new(vec![String::new()]).is_none());
    }
}
