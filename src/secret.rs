//! Secret values as types that cannot be printed.
//!
//! A value enters the agent from a backend as a [`SecretData`] and leaves it only through
//! [`SecretString::expose`] / [`SecretData::expose_json`]: the HTTP response writer, the
//! file renderer, the fingerprint HMAC and backend calls. `grep expose(` lists every exit.
//! Both types zero their memory on drop (and the JSON maps they are built from or parsed into
//! are [`scrub`]bed after use), print as `***` in `Debug`, and implement neither
//! `Display` nor `Serialize`.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// A secret string: zeroed on drop, redacted in `Debug`, no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// The value itself. Call only where the value must leave the process (see module docs).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes; safe to log.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        SecretString(Zeroizing::new(value))
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        SecretString(Zeroizing::new(value.to_owned()))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// The data of one served secret: a JSON object (field → value), held as its canonical JSON
/// text in zeroizing memory.
///
/// Keys are sorted, so two `SecretData` are equal exactly when their values are: the agent
/// compares them to decide whether a refresh changed the served version.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretData(SecretString);

/// Errors building or reading [`SecretData`]. They never contain a value.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The bytes were not a JSON object.
    #[error("secret data is not a JSON object")]
    NotAnObject,
}

impl SecretData {
    /// Builds the data from a JSON object. The map is consumed and its strings zeroed.
    pub fn from_map(map: serde_json::Map<String, serde_json::Value>) -> Self {
        let mut value = serde_json::Value::Object(map);
        let text = value.to_string();
        scrub(&mut value);
        SecretData(SecretString::from(text))
    }

    /// Builds `{field: value}` for a single string value.
    pub fn single(field: &str, value: SecretString) -> Self {
        let mut map = serde_json::Map::new();
        map.insert(field.to_owned(), serde_json::Value::String(value.expose().to_owned()));
        Self::from_map(map)
    }

    /// Parses the JSON object text written by [`SecretData::expose_json`].
    pub fn from_json(text: &str) -> Result<Self, DataError> {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => Ok(Self::from_map(map)),
            _ => Err(DataError::NotAnObject),
        }
    }

    /// The JSON object text. This is an exit for the value (see module docs).
    pub fn expose_json(&self) -> &str {
        self.0.expose()
    }

    /// One field: strings as they are, other JSON values as their JSON text.
    pub fn field(&self, name: &str) -> Option<SecretString> {
        let mut map = self.parse();
        let field = map.get(name).map(|value| match value {
            serde_json::Value::String(s) => SecretString::from(s.as_str()),
            other => SecretString::from(other.to_string()),
        });
        scrub(&mut map);
        field
    }

    /// The field names, in order; safe to log.
    pub fn field_names(&self) -> Vec<String> {
        let mut map = self.parse();
        let names = map.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        scrub(&mut map);
        names
    }

    /// The parsed object; callers [`scrub`] it when done.
    fn parse(&self) -> serde_json::Value {
        match serde_json::from_str(self.0.expose()) {
            Ok(value @ serde_json::Value::Object(_)) => value,
            // Built only from objects, so this cannot happen; answer empty rather than panic.
            _ => serde_json::Value::Object(serde_json::Map::new()),
        }
    }
}

/// Zeroes every string inside `value`. Object keys (field names) and numbers (held inline,
/// not on the heap) are left as they are.
pub fn scrub(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub),
        serde_json::Value::Object(map) => map.values_mut().for_each(scrub),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) | serde_json::Value::Null => {}
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretData({} fields, ***)", self.field_names().len())
    }
}

/// The name of a configured secret (`[secrets.NAME]`): safe to log, audit and label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    /// Wraps a configured name.
    pub fn new(name: impl Into<String>) -> Self {
        SecretName(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SecretName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let data = SecretData::single("password", SecretString::from("s3cr3t-value"));
        assert!(!format!("{data:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", data.field("password")).contains("s3cr3t"));
        assert_eq!(data.field("password").unwrap().expose(), "s3cr3t-value");
    }

    #[test]
    fn equal_maps_compare_equal_whatever_the_insertion_order() {
        let a = SecretData::from_json(r#"{"b":1,"a":"x"}"#).unwrap();
        let b = SecretData::from_json(r#"{"a":"x","b":1}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.field("b").unwrap().expose(), "1");
    }

    #[test]
    fn scrub_empties_every_string_and_keeps_the_shape() {
        let mut v = serde_json::json!({"a": "xyz", "b": ["pq", {"c": "r"}], "n": 5, "t": true});
        scrub(&mut v);
        assert_eq!(v, serde_json::json!({"a": "", "b": ["", {"c": ""}], "n": 5, "t": true}));
    }
}
