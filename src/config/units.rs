//! Human-friendly units in config files: durations like `30s` and sizes like `32MiB`.

use serde::{de, Deserialize, Deserializer, Serializer};
use std::time::Duration;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 5m, 250ms"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ))
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

pub(crate) fn format_duration(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 32MiB"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB or GiB)"
            ))
        }
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(f64),
    Text(String),
}

pub mod duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Number(n) if n >= 0.0 => Ok(Duration::from_secs_f64(n)),
            NumberOrText::Number(n) => Err(de::Error::custom(format!("negative duration {n}"))),
            NumberOrText::Text(t) => parse_duration(&t).map_err(de::Error::custom),
        }
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
}

pub(crate) mod size {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Number(n) if n >= 0.0 && n.fract() == 0.0 => Ok(n as u64),
            NumberOrText::Number(n) => Err(de::Error::custom(format!("invalid size {n}"))),
            NumberOrText::Text(t) => parse_size(&t).map_err(de::Error::custom),
        }
    }

    pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }
}

/// `ip:port`, with a message that says what is wrong with a host name.
fn parse_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse().map_err(|_| {
        if text.rsplit_once(':').is_some_and(|(host, port)| {
            port.parse::<u16>().is_ok() && host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[')
        }) {
            format!("`{text}`: an IP address and port are needed, not a host name (127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080)")
        } else {
            format!("`{text}` is not an IP address and port such as 127.0.0.1:8080")
        }
    })
}

/// A listen address (`ip:port`).
pub(crate) mod addr {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<std::net::SocketAddr, D::Error> {
        let text = match NumberOrText::deserialize(d)? {
            NumberOrText::Number(n) => n.to_string(),
            NumberOrText::Text(t) => t,
        };
        parse_addr(&text).map_err(de::Error::custom)
    }

    pub(crate) fn serialize<S: Serializer>(
        a: &std::net::SocketAddr,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(a)
    }
}

/// An optional listen address (`null`: none).
pub(crate) mod opt_addr {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<std::net::SocketAddr>, D::Error> {
        Option::<NumberOrText>::deserialize(d)?
            .map(|v| {
                let text = match v {
                    NumberOrText::Number(n) => n.to_string(),
                    NumberOrText::Text(t) => t,
                };
                parse_addr(&text).map_err(de::Error::custom)
            })
            .transpose()
    }

    pub(crate) fn serialize<S: Serializer>(
        a: &Option<std::net::SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.collect_str(a),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_say_what_is_wrong() {
        assert_eq!(parse_addr("127.0.0.1:8080").unwrap().port(), 8080);
        assert_eq!(parse_addr("[::1]:9090").unwrap().port(), 9090);
        assert!(parse_addr("localhost:18080")
            .unwrap_err()
            .contains("not a host name"));
        assert!(parse_addr("8080")
            .unwrap_err()
            .contains("such as 127.0.0.1:8080"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("1TB").is_err());
    }
}
