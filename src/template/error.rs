//! The errors of templates: of their framing ([`Error`], at parse), of a placeholder `check`
//! refuses ([`BindError`], with its [`Problem`]) and of a render ([`RenderError`]). Each names
//! placeholders, secrets, fields and filters, never a value.

use super::FILTERS;
use crate::secret::SecretName;

/// A template whose framing does not parse. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `{{` with no `}}` after it.
    #[error("\"{{{{\" at character {at} is not closed by \"}}}}\" (write \"{{{{{{{{\" for a literal \"{{{{\")")]
    Unclosed {
        /// Where the `{{` is.
        at: usize,
    },
    /// `{{}}` or `{{  }}`.
    #[error("empty field name at character {at}")]
    Empty {
        /// Where the `{{` is.
        at: usize,
    },
    /// A name with a brace or a line break in it, e.g. `{{{user}}}`.
    #[error("{name:?} at character {at} is not a field name (write \"{{{{{{{{\" for a literal \"{{{{\")")]
    BadName {
        /// The text between the braces.
        name: String,
        /// Where the `{{` is.
        at: usize,
    },
}

/// What is wrong with a placeholder. Names secrets, fields and filters, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The expression does not parse.
    #[error("{0}")]
    Syntax(String),
    /// `secrets["x"]` names no configured secret.
    #[error("unknown secret {name:?} (configured: {})", .known.join(", "))]
    UnknownSecret {
        /// The name.
        name: String,
        /// The configured secrets.
        known: Vec<String>,
    },
    /// A bare name in a file without `secret`: neither a secret nor a field of one.
    #[error(
        "{name:?} is not a secret (configured: {}), and this file sets no `secret` it could be a field of (write SECRET.FIELD)",
        .known.join(", ")
    )]
    UnknownName {
        /// The name.
        name: String,
        /// The configured secrets.
        known: Vec<String>,
    },
    /// A field the secret does not have (its kind's fields at `check`, its data at render).
    #[error("secret {secret:?} has no field {field:?} (its fields: {})", .known.join(", "))]
    UnknownField {
        /// The secret.
        secret: String,
        /// The field asked for.
        field: String,
        /// The fields it has.
        known: Vec<String>,
        /// Named bare, as a field of the file's own `secret`.
        own: bool,
    },
    /// A filter that does not exist.
    #[error("unknown filter {name:?} (filters: {})", FILTERS.join(", "))]
    UnknownFilter {
        /// The name.
        name: String,
    },
    /// `my-db.password`: a secret whose name is not an identifier, written as if it were.
    #[error("{name:?} is not an identifier: write secrets[\"{name}\"].FIELD")]
    NotAnIdentifier {
        /// The secret.
        name: String,
    },
    /// A placeholder whose value is a whole secret.
    #[error("{name} is the whole secret {name:?}, not a value: name one of its fields ({name}.FIELD)")]
    WholeSecret {
        /// The secret.
        name: String,
    },
    /// Anything else the evaluation refused (a wrong type, a filter's argument).
    #[error("{0}")]
    Invalid(String),
}

/// A placeholder `check` refuses: where it is, as written, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {{{{ {placeholder} }}}}: {problem}")]
pub struct BindError {
    /// The placeholder's text.
    pub placeholder: String,
    /// Its line, from 1.
    pub line: usize,
    /// Its column in characters, from 1 (of the `{{`, or of the syntax error).
    pub column: usize,
    /// What is wrong.
    pub problem: Problem,
}

/// Why a template could not be rendered. Names fields, secrets and placeholders, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A placeholder names a field the secret's data lacks.
    #[error(
        "template names unknown field {field:?}{} (the secret has: {})",
        .secret.as_ref().map(|s| format!(" of secret {:?}", s.as_str())).unwrap_or_default(),
        .available.join(", ")
    )]
    UnknownField {
        /// The secret, when named (`db.field`); `None` for a field of the file's own `secret`.
        secret: Option<SecretName>,
        /// The field the template asked for.
        field: String,
        /// The fields the data has.
        available: Vec<String>,
    },
    /// A placeholder could not be evaluated.
    #[error("line {line}, column {column}: {{{{ {placeholder} }}}}: {reason}")]
    Placeholder {
        /// The placeholder's text.
        placeholder: String,
        /// Its line, from 1.
        line: usize,
        /// Its column, from 1.
        column: usize,
        /// Why (no value: minijinja's own messages are reduced to their kind).
        reason: String,
    },
    /// A secret the template renders was not given.
    #[error("secret {secret:?} is not served")]
    Unserved {
        /// The secret.
        secret: SecretName,
    },
}
