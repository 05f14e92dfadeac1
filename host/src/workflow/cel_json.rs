//! JSON into CEL and back, keeping numbers exact where an expression only passes them on.
//!
//! CEL computes with 64-bit integers and doubles. Run input keeps every JSON number as
//! written (an integer beyond 64 bits, a decimal with more digits than a double holds), and a
//! mapping such as `{"n": input.n}` must hand it on unchanged. So each number a double holds
//! only approximately is remembered by the double CEL sees; a double that comes out of the
//! expression with those bits is written back with the original digits. A number the
//! expression computed is a double, as CEL defines it. Two different numbers that round to one
//! double make that double ambiguous, and it comes out as the double.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value;
use serde_json::{Number, Value as Json};

/// Numbers a double holds only approximately, by the bits of that double (`None` when two
/// different numbers share them).
#[derive(Debug, Default)]
pub struct ExactNumbers(HashMap<u64, Option<Number>>);

impl ExactNumbers {
    /// JSON into CEL, with integers as `int` (or `uint`) when they fit so `input.n > 3` compares
    /// like for like; other numbers as doubles, remembered when the double is not exact.
    pub fn admit(&mut self, json: &Json) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(u)) => Value::UInt(u),
                _ => {
                    let f = as_double(n);
                    self.remember(f, n);
                    Value::Float(f)
                }
            },
            Json::String(s) => Value::String(Arc::new(s.clone())),
            Json::Array(items) => {
                Value::List(Arc::new(items.iter().map(|v| self.admit(v)).collect()))
            }
            Json::Object(map) => Value::from(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.admit(v)))
                    .collect::<HashMap<String, Value>>(),
            ),
        }
    }

    fn remember(&mut self, f: f64, n: &Number) {
        let written = n.to_string();
        if Number::from_f64(f).is_some_and(|d| d.to_string() == written) {
            return;
        }
        self.0
            .entry(f.to_bits())
            .and_modify(|known| {
                if known.as_ref().is_some_and(|k| k.to_string() != written) {
                    *known = None;
                }
            })
            .or_insert_with(|| Some(n.clone()));
    }

    /// CEL back to JSON, as `cel`'s own conversion does, but a remembered double gets its digits back.
    pub fn release<'a>(&self, value: &'a Value) -> Result<Json, cel::ConvertToJsonError<'a>> {
        Ok(match value {
            Value::List(items) => Json::Array(
                items
                    .iter()
                    .map(|v| self.release(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(map) => {
                let mut object = serde_json::Map::new();
                for (k, v) in map.map.iter() {
                    object.insert(k.to_string(), self.release(v)?);
                }
                Json::Object(object)
            }
            Value::Float(f) => match self.0.get(&f.to_bits()) {
                Some(Some(n)) => Json::Number(n.clone()),
                _ => value.json()?,
            },
            other => other.json()?,
        })
    }
}

/// The double nearest to `n`; beyond a double's range, an infinity (serde_json's `as_f64`
/// gives up there).
pub(crate) fn as_double(n: &Number) -> f64 {
    n.as_f64()
        .or_else(|| n.to_string().parse().ok())
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Json {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn passed_on_numbers_keep_their_digits() {
        let mut exact = ExactNumbers::default();
        for (text, out) in [
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            (
                "0.1000000000000000055511151231257827",
                "0.1000000000000000055511151231257827",
            ),
            // serde_json writes the exponent's sign; the number is the one sent.
            ("1e2", "1e+2"),
            ("-18446744073709551617", "-18446744073709551617"),
            ("1e400", "1e+400"),
        ] {
            let cel = exact.admit(&number(text));
            assert_eq!(exact.release(&cel).unwrap().to_string(), out);
        }
        // Exact doubles and 64-bit integers need no memory.
        for text in ["0.5", "-7", "18446744073709551615"] {
            let cel = exact.admit(&number(text));
            assert_eq!(exact.release(&cel).unwrap().to_string(), text);
        }
        assert_eq!(exact.0.len(), 5);
    }

    #[test]
    fn two_numbers_on_one_double_come_out_as_the_double() {
        let mut exact = ExactNumbers::default();
        let a = exact.admit(&number("0.1000000000000000055511151231257827"));
        exact.admit(&number("0.10000000000000000555"));
        assert_eq!(exact.release(&a).unwrap().to_string(), "0.1");
    }
}
