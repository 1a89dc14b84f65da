//! `[[file]] template` text: literal text with `{{field}}` placeholders, each replaced by one
//! field of the secret's data when the agent renders the file.
//!
//! The syntax, all of it:
//! - `{{field}}` or `{{ field }}` (spaces and tabs around the name are ignored) is the field's
//!   value: a string as it is, any other JSON value (number, bool, object) as its JSON text.
//! - `{{{{` is a literal `{{`. Nothing else is special: a single `{`, and `}}` outside a
//!   placeholder, are literal text.
//! - A name is any text up to the next `}}` except braces and line breaks; it must not be
//!   empty. Anything else is a syntax error, found when the config is validated.
//! - A name the secret's data does not have is a render error naming the field (and the
//!   fields the data has); nothing is written.
//!
//! [`Template::parse`] runs at config validation (`sidekey-agent check`);
//! [`Template::render`] in the agent's file delivery. Rendering builds the text in a
//! [`SecretString`], so the copy zeroes its memory when dropped.

use crate::secret::{SecretData, SecretString};

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

/// A template that does not parse. Positions count characters from 1.
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

/// A template names a field the secret's data does not have. Carries field names only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template names unknown field {field:?} (the secret has: {})", available.join(", "))]
pub struct RenderError {
    /// The field the template asked for.
    pub field: String,
    /// The fields the data has.
    pub available: Vec<String>,
}

impl Template {
    /// Parses template text (see the module docs for the syntax).
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
            let at = text[..text.len() - rest.len() + open].chars().count() + 1;
            let close = after.find("}}").ok_or(Error::Unclosed { at })?;
            let name = after[..close].trim_matches([' ', '\t']);
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
            parts.push(Part::Field(name.to_owned()));
            rest = &after[close + 2..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The field names the template uses, in order of appearance (repeats included).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The text with every placeholder replaced by its field of `data`; the first field
    /// `data` lacks is an error, and then nothing is rendered.
    pub fn render(&self, data: &SecretData) -> Result<SecretString, RenderError> {
        let mut values = Vec::new();
        for name in self.fields() {
            let value = data.field(name).ok_or_else(|| RenderError {
                field: name.to_owned(),
                available: data.field_names(),
            })?;
            values.push(value);
        }
        let size = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                Part::Field(_) => 0,
            })
            .sum::<usize>()
            + values.iter().map(SecretString::len).sum::<usize>();
        // Sized up front, so the string never reallocates and leaves a copy behind.
        let mut out = String::with_capacity(size);
        let mut values = values.iter();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(_) => out.push_str(values.next().expect("one value per field").expose()),
            }
        }
        Ok(SecretString::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> SecretData {
        SecretData::from_json(r#"{"username":"v-app-1","password":"p@ss{{x}}","port":5432}"#).unwrap()
    }

    fn render(template: &str) -> String {
        Template::parse(template)
            .unwrap()
            .render(&data())
            .unwrap()
            .expose()
            .to_owned()
    }

    #[test]
    fn fields_are_substituted_with_or_without_spaces() {
        assert_eq!(
            render("DB_USER={{username}}\nDB_PASS={{ password }}\n"),
            "DB_USER=v-app-1\nDB_PASS=p@ss{{x}}\n",
            "a value is inserted as it is, never parsed again"
        );
        assert_eq!(render("{{\tusername\t}}{{username}}"), "v-app-1v-app-1");
        assert_eq!(render("port={{port}}"), "port=5432", "non-strings as JSON text");
    }

    #[test]
    fn four_braces_are_a_literal_pair_and_other_braces_are_text() {
        assert_eq!(render("{{{{username}}"), "{{username}}");
        assert_eq!(render("{\"user\": \"{{username}}\"}"), "{\"user\": \"v-app-1\"}");
        assert_eq!(render("}} { } {{{{{{username}}"), "}} { } {{v-app-1");
        assert_eq!(render(""), "");
        assert_eq!(render("no fields"), "no fields");
    }

    #[test]
    fn syntax_errors_say_where() {
        assert_eq!(Template::parse("a={{username"), Err(Error::Unclosed { at: 3 }));
        assert_eq!(Template::parse("é{{ }}"), Err(Error::Empty { at: 2 }));
        let err = Template::parse("{{{username}}}").unwrap_err();
        assert_eq!(
            err,
            Error::BadName {
                name: "{username".into(),
                at: 1
            }
        );
        assert!(err.to_string().contains("\"{{{{\" for a literal \"{{\""), "{err}");
        assert!(matches!(Template::parse("{{a\nb}}"), Err(Error::BadName { .. })));
    }

    #[test]
    fn an_unknown_field_is_named_with_the_fields_there_are() {
        let err = Template::parse("U={{username}} X={{missing}}")
            .unwrap()
            .render(&data())
            .unwrap_err();
        assert_eq!(err.field, "missing");
        let message = err.to_string();
        assert!(message.contains("\"missing\""), "{message}");
        assert!(message.contains("password, port, username"), "{message}");
        assert!(
            !message.contains("v-app-1") && !message.contains("p@ss"),
            "no value: {message}"
        );
    }

    #[test]
    fn fields_lists_the_names_used() {
        let t = Template::parse("{{a}}-{{ b }}-{{a}}").unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["a", "b", "a"]);
    }
}
