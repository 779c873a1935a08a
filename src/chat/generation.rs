//! The generation controls Venice honours under E2EE, as typed values: what a front door read
//! is rebuilt from known fields and values, so nothing else the client wrote leaves in clear.
//! Their ranges are checked once, on the internal request, whichever door built it.

use crate::error::ApiError;
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Generation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reasoning_effort: Option<Effort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reasoning: Option<Reasoning>,
    /// The client's stop sequences, sent only when the operator says so
    /// (`encryption.send_stop_sequences`); else the proxy applies them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stop: Option<Vec<String>>,
}

/// Reasoning efforts as OpenAI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
}

impl Effort {
    pub(crate) fn parse(name: &str) -> Option<Effort> {
        Some(match name {
            "none" => Effort::None,
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::Xhigh,
            _ => return None,
        })
    }
}

/// The reasoning controls Venice takes (`reasoning`), known fields only.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Reasoning {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) effort: Option<Effort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exclude: Option<bool>,
}

/// The Venice flags a client may set; the ones that keep E2EE intact are the proxy's.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct VeniceFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) strip_thinking_response: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) disable_thinking: Option<bool>,
}

impl Generation {
    /// Every value within the range Venice accepts, the field named when not.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        let within = |name: &str, v: Option<f64>, lo: f64, hi: f64| match v {
            Some(x) if !(lo..=hi).contains(&x) => Err(out_of_range(name)),
            _ => Ok(()),
        };
        within("temperature", self.temperature, 0.0, 2.0)?;
        within("top_p", self.top_p, 0.0, 1.0)?;
        within("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        within("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        for (name, v) in [
            ("max_tokens", self.max_tokens),
            ("max_completion_tokens", self.max_completion_tokens),
        ] {
            if v == Some(0) {
                return Err(out_of_range(name));
            }
        }
        Ok(())
    }
}

fn out_of_range(name: &str) -> ApiError {
    ApiError::invalid(name, format!("`{name}` has an invalid value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_set_fields_leave_and_ranges_name_the_field() {
        let g = Generation {
            temperature: Some(0.5),
            reasoning: Some(Reasoning {
                effort: Some(Effort::Xhigh),
                ..Reasoning::default()
            }),
            ..Generation::default()
        };
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            json!({"temperature": 0.5, "reasoning": {"effort": "xhigh"}})
        );
        assert!(g.validate().is_ok());
        for bad in [
            Generation {
                temperature: Some(2.5),
                ..Generation::default()
            },
            Generation {
                top_p: Some(-0.1),
                ..Generation::default()
            },
            Generation {
                max_tokens: Some(0),
                ..Generation::default()
            },
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.message.contains(e.param.as_deref().unwrap()), "{e:?}");
        }
        assert_eq!(Effort::parse("medium"), Some(Effort::Medium));
        assert_eq!(Effort::parse("think hard"), None);
    }
}
