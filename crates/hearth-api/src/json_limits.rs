//! The limits every JSON request body meets before anything reads it.
//!
//! A body is walked once, fully, at the edge: it must be UTF-8 JSON whose strings are valid
//! Unicode (no lone surrogate escapes such as `"\ud800"`), whose numbers fit a double (`1e400`
//! and 5,000-digit integers do not), and whose nesting stays under [`MAX_DEPTH`]. Past this point
//! every layer — ruma's parsers, canonical JSON, the event builder, the database — may assume
//! so, and answers 400 instead of failing deep inside with a 500.
//! (`serde_json`'s own "ignore this value" path checks syntax only, not numbers or escapes.)

use std::fmt;

use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::ApiError;

/// Deeper nesting is refused. Matrix content is shallow; the limit leaves room for what the
/// server wraps around content (an event is three levels more) under `serde_json`'s own
/// recursion limit of 128.
pub const MAX_DEPTH: usize = 100;

/// Check a request body. Not JSON (syntax, encoding, escapes) is `M_NOT_JSON`; JSON beyond the
/// limits is `M_BAD_JSON`.
pub(crate) fn check(bytes: &[u8]) -> Result<(), ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let walked = Walk { depth: 0 }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    walked.map_err(|e| {
        let message = e.to_string();
        let kind = if message.contains(TOO_DEEP) || message.contains("number out of range") {
            ErrorKind::BadJson
        } else {
            ErrorKind::NotJson
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            kind,
            format!("request body: {message}"),
        )
    })
}

const TOO_DEEP: &str = "nested more deeply than";

/// Visits every value (so that numbers and strings are really parsed), counting depth.
#[derive(Clone, Copy)]
struct Walk {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Walk {
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("{TOO_DEEP} {MAX_DEPTH} levels")));
        }
        Ok(Self {
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(E::custom("number out of range"))
        }
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while map.next_key_seed(Key)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// Object keys: strings, parsed (and so checked) like any other.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(Walk { depth: 0 })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn errcode(body: &str) -> Option<ErrorKind> {
        check(body.as_bytes()).err().map(|e| e.kind)
    }

    #[test]
    fn ordinary_bodies_pass() {
        for body in [
            r#"{"msgtype":"m.text","body":"hi \u00e9 \ud83d\ude00"}"#,
            r#"{"a":[1,-2,3.5,1e300,true,null,{"b":{}}]}"#,
            "[]",
            r#""just a string""#,
        ] {
            assert_eq!(errcode(body), None, "{body}");
        }
    }

    #[test]
    fn not_json_is_not_json() {
        for body in [
            "{",
            "{\"a\":1} trailing",
            r#"{"a":"\ud800"}"#,
            r#"{"\udc00":1}"#,
            "{\"a\":\"\u{1}\"}",
        ] {
            assert_eq!(errcode(body), Some(ErrorKind::NotJson), "{body}");
        }
        assert_eq!(
            check(b"{\"a\":\"\xff\"}").err().map(|e| e.kind),
            Some(ErrorKind::NotJson)
        );
    }

    #[test]
    fn numbers_beyond_a_double_are_bad_json() {
        let huge = format!(r#"{{"users_default":{}}}"#, "9".repeat(5000));
        for body in [r#"{"a":1e400}"#, r#"{"a":-1e400}"#, huge.as_str()] {
            assert_eq!(errcode(body), Some(ErrorKind::BadJson), "{body}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        assert_eq!(errcode(&nested(MAX_DEPTH)), None);
        assert_eq!(errcode(&nested(MAX_DEPTH + 1)), Some(ErrorKind::BadJson));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(5000), "}".repeat(5000));
        assert_eq!(errcode(&objects), Some(ErrorKind::BadJson));
    }
}
