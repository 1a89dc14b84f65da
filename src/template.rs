//! `[[file]] template` text: literal text with `{{ … }}` placeholders, each replaced by a
//! value of the secrets the file renders when the agent writes the file.
//!
//! # Syntax
//! - A placeholder runs from `{{` to the next `}}` on the same line; spaces and tabs around
//!   its text are ignored, and the text cannot be empty or hold a brace. `{{{{` is a literal
//!   `{{`. Nothing else is special: a single `{`, and `}}` outside a placeholder, are text.
//!   (This framing is the one of the first template syntax, unchanged.)
//! - Inside, a placeholder is an expression of [minijinja](https://docs.rs/minijinja)'s
//!   syntax, of which a template needs three parts: a secret's field, `db.username` or
//!   `db["api-key"]`; `secrets["my-db"].password` for a secret whose name is not an
//!   identifier; and filters, `{{ db.password | json }}` (see [`FILTERS`]).
//! - **Names.** A name that is `secrets` is the map of every secret; a name that is a
//!   configured secret is that secret; any other name is a field of the file's own `secret`
//!   (a file without one has no bare fields). So in a file with `secret = "db"`, `{{ password }}`
//!   is db's field, as before, and `{{ api.value }}` reads the secret `api`.
//! - **Fields as written before.** In a file with a `secret`, a placeholder with no `|` whose
//!   first name (up to a `.` or `[`) is not a secret nor `secrets` is the field named by its
//!   whole text, exactly as the first syntax read it: `{{ api-key }}` and `{{ tls.crt }}` stay
//!   the fields `api-key` and `tls.crt`.
//! - A field's value is its string, or the JSON text of any other JSON value; a filter writes
//!   that string in its reader's syntax. Values are inserted as they are, escaped only by
//!   filters.
//!
//! # Sandbox
//! The engine has no loader, no filesystem or network access and runs no command; it has no
//! built-in filter, test, function or global: the filters of [`FILTERS`] are all there is.
//! Statements (`{% … %}`) do not exist here; an expression can still use minijinja's
//! operators (`~`, `if … else`, comparisons). Undefined names are errors, nothing is
//! auto-escaped, and each evaluation runs on a fuel budget.
//!
//! # Life of a template
//! [`Template::parse`] reads the framing; [`Template::bind`] (config validation, `sidekey-agent
//! check`) resolves every name against the configured secrets, compiles and evaluates each
//! expression on stand-in values — syntax errors, unknown secrets, fields and filters are
//! found here — and answers a [`Bound`] template that knows the secrets it renders;
//! [`Bound::render`] (the agent's file delivery) fills it from the served data. An expression
//! `check` did not evaluate in full (the branch of an `if` that stand-ins do not take) is
//! checked when rendered.
//!
//! # Copies of values
//! Rendering copies, all into zeroizing memory: each secret's data (once per render), each
//! field read ([`SecretData::field`]), each filter's output, and the rendered text
//! ([`SecretString`], sized up front so it never reallocates). An operator that joins strings
//! (`~`) makes a plain `String` that is not zeroed: write two placeholders instead.

mod error;
mod filters;
mod scope;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use minijinja::value::{DynObject, Value, ValueKind};
use minijinja::{Environment, ErrorKind, Expression, UndefinedBehavior};

use crate::secret::{SecretData, SecretName, SecretString};
pub use error::{BindError, Error, Problem, RenderError};
pub use filters::NAMES as FILTERS;
use scope::{Scope, Secret, Secrets, Source, Text};

/// A parsed template: its framing, before its names are resolved (see [`Template::bind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Placeholder(Placeholder),
}

/// One `{{ … }}`: its text (trimmed) and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placeholder {
    text: String,
    /// Line of the `{{`, from 1.
    line: usize,
    /// Column (in characters, from 1) of the `{{`.
    column: usize,
    /// Column of the text's first character.
    text_column: usize,
}

/// What a template may name, for [`Template::bind`]: the configured secrets and the file's own.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    /// The file's `secret`, whose fields bare names are (one of `secrets`).
    pub own: Option<&'a str>,
    /// Every configured secret, with its fields when its kind fixes them ([`Fields`]).
    pub secrets: &'a BTreeMap<SecretName, Fields>,
}

/// A kind's fields: `Some` when the kind fixes them (`vault.database`: `username`,
/// `password`, …), `None` when they depend on the data (a KV map).
pub type Fields = Option<&'static [&'static str]>;

impl Template {
    /// Parses template text: its framing (see the module docs). Names are resolved by
    /// [`Template::bind`].
    pub fn parse(text: &str) -> Result<Template, Error> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            if let Some(tail) = after.strip_prefix("{{") {
                literal.push_str("{{");
                rest = tail;
                continue;
            }
            let before = &text[..text.len() - rest.len() + open];
            let at = before.chars().count() + 1;
            let close = after.find("}}").ok_or(Error::Unclosed { at })?;
            let inner = &after[..close];
            let name = inner.trim_matches([' ', '\t']);
            if name.is_empty() {
                return Err(Error::Empty { at });
            }
            if name.contains(['{', '}', '\n', '\r']) {
                return Err(Error::BadName {
                    name: name.to_owned(),
                    at,
                });
            }
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            let indent = inner.len() - inner.trim_start_matches([' ', '\t']).len();
            parts.push(Part::Placeholder(Placeholder {
                text: name.to_owned(),
                line: before.matches('\n').count() + 1,
                column,
                text_column: column + 2 + indent,
            }));
            rest = &after[close + 2..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The placeholders' texts, in order of appearance (repeats included).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.placeholders().map(|p| p.text.as_str())
    }

    fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.parts.iter().filter_map(|p| match p {
            Part::Placeholder(p) => Some(p),
            Part::Text(_) => None,
        })
    }

    /// Resolves every placeholder against `names` and evaluates each on stand-in values, so
    /// that what would fail at render fails here: a syntax error, an unknown secret, filter or
    /// name, a field the secret's kind does not have (when its kind fixes its fields), a
    /// placeholder whose value is a whole secret. The first one found is the error.
    pub fn bind(&self, names: Names<'_>) -> Result<Bound, BindError> {
        let probes = names
            .secrets
            .iter()
            .map(|(name, fields)| (name.to_string(), Source::Probe(*fields)))
            .collect();
        let probe = Scope::new(names.own.map(str::to_owned), probes);
        let mut pieces = Vec::with_capacity(self.parts.len());
        let mut unevaluated = Vec::new();
        for part in &self.parts {
            let p = match part {
                Part::Text(text) => {
                    pieces.push(Piece::Text(text.clone()));
                    continue;
                }
                Part::Placeholder(p) => p,
            };
            let refuse = |problem| BindError {
                placeholder: p.text.clone(),
                line: p.line,
                column: p.column,
                problem,
            };
            if let Some(own) = names.own.filter(|_| is_own_field(&p.text, names.secrets)) {
                if let Some(Some(known)) = names.secrets.get(own) {
                    if !known.contains(&p.text.as_str()) {
                        return Err(refuse(Problem::UnknownField {
                            secret: own.to_owned(),
                            field: p.text.clone(),
                            known: known.iter().map(|f| f.to_string()).collect(),
                            own: true,
                        }));
                    }
                }
                pieces.push(Piece::Field(p.clone()));
                continue;
            }
            if let Some(name) = names.secrets.keys().find(|name| {
                let rest = p.text.strip_prefix(name.as_str());
                !is_identifier(name.as_str()) && rest.is_some_and(|r| r.starts_with(['.', '[']))
            }) {
                return Err(refuse(Problem::NotAnIdentifier { name: name.to_string() }));
            }
            let expr = ENV.compile_expression(&p.text).map_err(|e| {
                let start = e.range().map_or(0, |r| r.start.min(p.text.len()));
                let offset = p.text.get(..start).map_or(0, |s| s.chars().count());
                BindError {
                    column: p.text_column + offset,
                    ..refuse(Problem::Syntax(format!(
                        "{}: {}",
                        e.kind(),
                        e.detail().unwrap_or_default()
                    )))
                }
            })?;
            // Names in branches the stand-ins do not take are not evaluated, but are read.
            let mut vars: Vec<String> = expr.undeclared_variables(false).into_iter().collect();
            vars.sort();
            unevaluated.extend(vars.into_iter().filter(|v| names.secrets.contains_key(v.as_str())));
            evaluate(&expr, &probe, false).map_err(refuse)?;
            pieces.push(Piece::Expr(p.clone()));
        }
        let mut secrets: Vec<SecretName> = names.own.map(SecretName::new).into_iter().collect();
        for name in probe.named().into_iter().chain(unevaluated) {
            if !secrets.iter().any(|s| s.as_str() == name) {
                secrets.push(SecretName::new(name));
            }
        }
        Ok(Bound {
            pieces,
            own: names.own.map(SecretName::new),
            secrets,
        })
    }

    /// Renders with `data` as the file's own `secret` (and no other secret): the template of a
    /// single-secret file. Any failure, of names or of values, is a [`RenderError`].
    pub fn render(&self, data: &SecretData) -> Result<SecretString, RenderError> {
        let own = SecretName::new("");
        let secrets = BTreeMap::from([(own.clone(), None)]);
        let names = Names {
            own: Some(own.as_str()),
            secrets: &secrets,
        };
        let bound = self.bind(names).map_err(|e| RenderError::Placeholder {
            placeholder: e.placeholder,
            line: e.line,
            column: e.column,
            reason: e.problem.to_string(),
        })?;
        bound.render(BTreeMap::from([(own, data.clone())]))
    }
}

/// A placeholder read as the first syntax read it: a field of the file's own secret, named by
/// the whole text (no `|`, and its first name is no secret and not `secrets`).
fn is_own_field(text: &str, secrets: &BTreeMap<SecretName, Fields>) -> bool {
    let first = text.split(['.', '[']).next().unwrap_or_default().trim();
    !text.contains('|') && first != "secrets" && !secrets.contains_key(first)
}

/// Whether `name` can be written bare in an expression (letters, digits and `_`, not
/// starting with a digit).
fn is_identifier(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A template bound to the secrets it renders: what a validated `[[file]]` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pieces: Vec<Piece>,
    own: Option<SecretName>,
    secrets: Vec<SecretName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A field of the file's own secret, by its exact name.
    Field(Placeholder),
    /// An expression.
    Expr(Placeholder),
}

impl Bound {
    /// Every secret the template renders: the file's own `secret` first, then the others in
    /// the order the template names them.
    pub fn secrets(&self) -> &[SecretName] {
        &self.secrets
    }

    /// The text with every placeholder replaced, from `values` (each secret of
    /// [`Bound::secrets`] by name; the data moves into the evaluation and is zeroed with it);
    /// the first placeholder that fails is the error, and then nothing is rendered.
    pub fn render(&self, mut values: BTreeMap<SecretName, SecretData>) -> Result<SecretString, RenderError> {
        let mut sources = BTreeMap::new();
        for name in &self.secrets {
            let data = values
                .remove(name)
                .ok_or_else(|| RenderError::Unserved { secret: name.clone() })?;
            sources.insert(name.to_string(), Source::Data(data));
        }
        drop(values);
        let own = self.own.as_ref().map(SecretName::to_string);
        let scope = Scope::new(own.clone(), sources);
        let mut filled = Vec::new();
        for piece in &self.pieces {
            let (p, value) = match piece {
                Piece::Text(_) => continue,
                Piece::Field(p) => {
                    let own = own.as_deref().expect("fields are bound only in files with a secret");
                    (p, scope.text(own, &p.text, true))
                }
                Piece::Expr(p) => match ENV.compile_expression(&p.text) {
                    Ok(expr) => (p, evaluate(&expr, &scope, true)),
                    Err(e) => (p, Err(Problem::Syntax(e.kind().to_string()))),
                },
            };
            filled.push(value.map_err(|problem| match problem {
                Problem::UnknownField {
                    secret,
                    field,
                    known,
                    own,
                } => RenderError::UnknownField {
                    secret: (!own).then(|| SecretName::new(secret)),
                    field,
                    available: known,
                },
                other => RenderError::Placeholder {
                    placeholder: p.text.clone(),
                    line: p.line,
                    column: p.column,
                    reason: other.to_string(),
                },
            })?);
        }
        let size = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Field(_) | Piece::Expr(_) => 0,
            })
            .sum::<usize>()
            + filled.iter().map(SecretString::len).sum::<usize>();
        // Sized up front, so the string never reallocates and leaves a copy behind.
        let mut out = String::with_capacity(size);
        let mut filled = filled.iter();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(_) | Piece::Expr(_) => {
                    out.push_str(filled.next().expect("one value per placeholder").expose())
                }
            }
        }
        Ok(SecretString::from(out))
    }
}

/// The fuel of one evaluation: far more than a placeholder needs (one instruction is 64
/// units, one byte produced one), far less than a runaway `"x" * 1000000` costs.
const FUEL: u64 = 100_000;

/// The engine: empty (no built-in filter, test, function or global, no loader), strict about
/// undefined names, not in debug mode, on a fuel budget, with the filters of [`FILTERS`].
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Debug mode keeps the values an error saw, for its report: never here.
    env.set_debug(false);
    env.set_fuel(Some(FUEL));
    for name in FILTERS {
        env.add_filter(*name, move |value: Value| filter(name, &value));
    }
    env
});

/// The filter `name` on a value: a field's value, a filter's output, or a literal.
fn filter(name: &str, value: &Value) -> Result<Value, minijinja::Error> {
    let invalid = |what: String| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("filter {name} takes a value, not {what}"),
        )
    };
    let literal;
    let text = if let Some(text) = value.downcast_object_ref::<Text>() {
        text.0.expose()
    } else if let Some(secret) = value.downcast_object_ref::<Secret>() {
        let name = &secret.name;
        return Err(invalid(format!(
            "the whole secret {name:?} (name a field: {name}.FIELD)"
        )));
    } else if let Some(s) = value.as_str() {
        s
    } else if matches!(value.kind(), ValueKind::Number | ValueKind::Bool) {
        literal = value.to_string();
        &literal
    } else {
        return Err(invalid(value.kind().to_string()));
    };
    let escaped = filters::apply(name, text)
        .map_err(|reason| minijinja::Error::new(ErrorKind::BadSerialization, format!("{name}: {reason}")))?;
    Ok(Value::from_object(Text(escaped)))
}

/// Evaluates `expr` in `scope`: the value as text, or the problem. `rendering`: the values are
/// real, so minijinja's own messages (which may quote a value) are reduced to their kind.
fn evaluate(expr: &Expression<'_, '_>, scope: &Arc<Scope>, rendering: bool) -> Result<SecretString, Problem> {
    let result = expr.eval(Value::from_dyn_object(DynObject::new(scope.clone())));
    if let Some(problem) = scope.take_problem() {
        return Err(problem);
    }
    let value = result.map_err(|e| match e.kind() {
        ErrorKind::UnknownFilter => Problem::UnknownFilter {
            name: e
                .detail()
                .and_then(|d| d.strip_prefix("filter "))
                .and_then(|d| d.strip_suffix(" is unknown"))
                .unwrap_or_default()
                .to_owned(),
        },
        // The filters' own errors name the filter and never a value.
        ErrorKind::BadSerialization => Problem::Invalid(e.detail().unwrap_or_default().to_owned()),
        kind if rendering => Problem::Invalid(kind.to_string()),
        kind => Problem::Invalid(match e.detail() {
            Some(detail) => format!("{kind}: {detail}"),
            None => kind.to_string(),
        }),
    })?;
    if let Some(text) = value.downcast_object_ref::<Text>() {
        return Ok(text.0.clone());
    }
    if let Some(secret) = value.downcast_object_ref::<Secret>() {
        return Err(Problem::WholeSecret {
            name: secret.name.clone(),
        });
    }
    if value.downcast_object_ref::<Secrets>().is_some() {
        return Err(Problem::Invalid(
            "`secrets` is every secret: name one and a field, secrets[\"NAME\"].FIELD".into(),
        ));
    }
    match value.kind() {
        ValueKind::String => Ok(SecretString::from(value.as_str().unwrap_or_default())),
        ValueKind::Number | ValueKind::Bool => Ok(SecretString::from(value.to_string())),
        kind => Err(Problem::Invalid(format!("a placeholder's value cannot be {kind}"))),
    }
}

#[cfg(test)]
mod tests;
