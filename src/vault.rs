//! What sidekey reads of Vault/OpenBao's own answers, in one place for the agent's backend and
//! the scanner's Vault client: the error body `{"errors": ["...", ...]}`. Only `errors` is read,
//! so nothing else an answer carries (a `data` with a value) can reach a message.

use serde::Deserialize;

/// Vault's error answer.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// Vault's words, one per problem.
    #[serde(default)]
    pub errors: Vec<String>,
}

impl ErrorBody {
    /// The `errors` of `body`; none when it is absent or not that shape.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The errors `; `-joined (empty when there are none).
    pub fn joined(&self) -> String {
        self.errors.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_errors_are_read() {
        // A value made at run time, so that no key-shaped literal is committed.
        let value = format!("pw-{:x}", std::process::id().wrapping_mul(2_654_435_761));
        let body =
            serde_json::json!({"errors": ["permission denied", "1 error occurred"], "data": {"password": value}});
        let joined = ErrorBody::parse(body.to_string().as_bytes()).joined();
        assert_eq!(joined, "permission denied; 1 error occurred");
        assert!(!joined.contains(&value));
        assert_eq!(ErrorBody::parse(b"<html>bad gateway</html>"), ErrorBody::default());
        assert_eq!(ErrorBody::parse(br#"{"data":{}}"#).joined(), "");
    }
}
