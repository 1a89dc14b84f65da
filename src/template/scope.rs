//! What a placeholder's expression sees, as minijinja objects: the [`Scope`] (the root of
//! every name), a secret ([`Secret`]: its fields), the `secrets` map ([`Secrets`]) and a
//! value ([`Text`]: a field, or a filter's output).
//!
//! Values stay in [`SecretString`]s: a [`Text`] is an object holding one, rendered by writing
//! it out, so minijinja never makes a plain `String` of it unless an operator asks for one
//! (`~`, comparisons; documented). The same objects serve `check` (a [`Source::Probe`] per
//! secret: the kind's fields when it fixes them, empty stand-in values) and rendering
//! ([`Source::Data`]: the served data), so both resolve names by the same rules.
//!
//! Objects cannot fail a lookup with a reason, only answer "undefined"; the reason is kept in
//! the scope ([`Scope::problem`]) and reported in place of minijinja's generic message.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use super::Problem;
use crate::secret::{SecretData, SecretString};

/// Where a secret's fields come from.
pub(super) enum Source {
    /// Rendering: the served data.
    Data(SecretData),
    /// `check`: the kind's fields when the kind fixes them (`None`: any name passes); every
    /// field is an empty stand-in.
    Probe(Option<&'static [&'static str]>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Data(data) => data.fmt(f),
            Source::Probe(fields) => write!(f, "Probe({fields:?})"),
        }
    }
}

/// The root of every name: `secrets`, then the secrets by name, then (in a file with
/// `secret`) the fields of that secret.
#[derive(Debug)]
pub(super) struct Scope {
    /// The file's `secret`, whose fields bare names are.
    own: Option<String>,
    /// The secrets a placeholder may name (`own` among them).
    secrets: BTreeMap<String, Source>,
    /// The secrets named so far, in order.
    named: Mutex<Vec<String>>,
    /// The first name that did not resolve, and why.
    problem: Mutex<Option<Problem>>,
}

impl Scope {
    pub(super) fn new(own: Option<String>, secrets: BTreeMap<String, Source>) -> Arc<Scope> {
        Arc::new(Scope {
            own,
            secrets,
            named: Mutex::default(),
            problem: Mutex::default(),
        })
    }

    /// The secrets the evaluations so far named, in order of first use.
    pub(super) fn named(&self) -> Vec<String> {
        self.named.lock().expect("never poisoned").clone()
    }

    /// Takes the problem the last evaluation met, if any.
    pub(super) fn take_problem(&self) -> Option<Problem> {
        self.problem.lock().expect("never poisoned").take()
    }

    fn problem(&self, problem: Problem) {
        self.problem.lock().expect("never poisoned").get_or_insert(problem);
    }

    fn known(&self) -> Vec<String> {
        self.secrets.keys().cloned().collect()
    }

    /// The secret `name` as an object, recorded as named.
    fn secret(self: &Arc<Self>, name: &str) -> Value {
        let mut named = self.named.lock().expect("never poisoned");
        if !named.iter().any(|n| n == name) {
            named.push(name.to_owned());
        }
        Value::from_object(Secret {
            scope: self.clone(),
            name: name.to_owned(),
        })
    }

    /// The field `field` of the secret `secret`; `own` when it was named bare (`{{ field }}`).
    /// A field that is not there is recorded as the problem, and is undefined.
    fn field(&self, secret: &str, field: &str, own: bool) -> Option<Value> {
        match self.text(secret, field, own) {
            Ok(text) => Some(Value::from_object(Text(text))),
            Err(problem) => {
                self.problem(problem);
                None
            }
        }
    }

    /// The value of the field `field` of the secret `secret` (a stand-in at `check`).
    pub(super) fn text(&self, secret: &str, field: &str, own: bool) -> Result<SecretString, Problem> {
        let unknown = |known: Vec<String>| Problem::UnknownField {
            secret: secret.to_owned(),
            field: field.to_owned(),
            known,
            own,
        };
        match self.secrets.get(secret) {
            None => Err(Problem::UnknownSecret {
                name: secret.to_owned(),
                known: self.known(),
            }),
            Some(Source::Data(data)) => data.field(field).ok_or_else(|| unknown(data.field_names())),
            Some(Source::Probe(Some(known))) if !known.contains(&field) => {
                Err(unknown(known.iter().map(|f| f.to_string()).collect()))
            }
            Some(Source::Probe(_)) => Ok(SecretString::from("")),
        }
    }
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if name == "secrets" {
            return Some(Value::from_object(Secrets(self.clone())));
        }
        if self.secrets.contains_key(name) {
            return Some(self.secret(name));
        }
        match &self.own {
            Some(own) => self.field(own, name, true),
            None => {
                self.problem(Problem::UnknownName {
                    name: name.to_owned(),
                    known: self.known(),
                });
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}

/// `secrets`: every secret by its name, for names that are not identifiers
/// (`secrets["my-db"].password`).
#[derive(Debug)]
pub(super) struct Secrets(Arc<Scope>);

impl Object for Secrets {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let scope = &self.0;
        let Some(name) = key.as_str() else {
            scope.problem(Problem::Invalid(
                "a secret is named by a string: secrets[\"NAME\"]".into(),
            ));
            return None;
        };
        if scope.secrets.contains_key(name) {
            return Some(scope.secret(name));
        }
        scope.problem(Problem::UnknownSecret {
            name: name.to_owned(),
            known: scope.known(),
        });
        None
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secrets>")
    }
}

/// One secret: its fields by name (`db.password`, `db["api-key"]`).
#[derive(Debug)]
pub(super) struct Secret {
    scope: Arc<Scope>,
    /// The secret's name.
    pub(super) name: String,
}

impl Object for Secret {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let Some(field) = key.as_str() else {
            self.scope.problem(Problem::Invalid(format!(
                "a field of {:?} is named by a string: [\"FIELD\"]",
                self.name
            )));
            return None;
        };
        self.scope.field(&self.name, field, false)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret {}>", self.name)
    }
}

/// A value: a secret's field, or what a filter made of one. Prints as `Text(***)`; renders
/// as the value itself.
pub(super) struct Text(pub(super) SecretString);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Text(***)")
    }
}

impl Object for Text {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.0.is_empty()
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.expose())
    }
}
