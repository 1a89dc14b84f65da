//! What `exec` puts into its command's environment: each `--env VAR=SPEC` bound to a secret
//! and maybe one field of its data ([`bind`]), then rendered to the variable's value
//! ([`render`]). Pure functions; errors name variables, secrets and fields, never a value.

use sidekey::{SecretData, SecretString};

use crate::cli::EnvArg;

/// One variable and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The environment variable.
    pub var: String,
    /// The secret's name.
    pub secret: String,
    /// One field of its data; `None` for the secret's value (see [`whole`]).
    pub field: Option<String>,
}

/// Binds every `--env`, `readable` being the names the agent lets this caller read (empty
/// when the agent would not list them).
pub fn bind(args: &[EnvArg], readable: &[String]) -> Vec<Binding> {
    args.iter()
        .map(|arg| {
            let (secret, field) = split(&arg.spec, readable);
            Binding {
                var: arg.var.clone(),
                secret,
                field,
            }
        })
        .collect()
}

/// `SECRET` or `SECRET.FIELD`. Secret names may hold dots (`[secrets."db.prod"]`), so SPEC
/// is first matched against the readable names: the whole of it, else the longest readable
/// name followed by `.FIELD`. A SPEC matching none is split at its first dot, so that the
/// agent's refusal names the secret as the user most likely meant it.
fn split(spec: &str, readable: &[String]) -> (String, Option<String>) {
    if readable.iter().any(|n| n == spec) {
        return (spec.to_owned(), None);
    }
    let longest = spec
        .rmatch_indices('.')
        .map(|(at, _)| at)
        .find(|&at| readable.iter().any(|n| *n == spec[..at]));
    match longest.or_else(|| spec.find('.')) {
        Some(at) => (spec[..at].to_owned(), Some(spec[at + 1..].to_owned())),
        None => (spec.to_owned(), None),
    }
}

/// The command's environment as `exec` sets it: (variable, value) in `--env` order.
#[derive(Debug, PartialEq, Eq)]
pub struct Env(pub Vec<(String, SecretString)>);

/// Every binding's value, `data` answering a secret's data by name. The first binding that
/// cannot be rendered is the error: its secret missing from `data`, its field missing from the
/// secret, or a value holding a NUL byte (which no environment variable can carry).
pub fn render<'a>(bindings: &[Binding], data: impl Fn(&str) -> Option<&'a SecretData>) -> Result<Env, String> {
    let mut env = Vec::with_capacity(bindings.len());
    for b in bindings {
        let secret = data(&b.secret).ok_or_else(|| format!("{}: secret {} was not read", b.var, b.secret))?;
        let value = match &b.field {
            Some(field) => secret.field(field).ok_or_else(|| {
                format!(
                    "{}: secret {} has no field {field:?} (it has: {})",
                    b.var,
                    b.secret,
                    secret.field_names().join(", ")
                )
            })?,
            None => whole(secret),
        };
        if value.expose().contains('\0') {
            let what = b.field.as_ref().map_or(String::new(), |f| format!(" field {f:?}"));
            return Err(format!(
                "{}: the value of secret {}{what} holds a NUL byte, which an environment variable cannot",
                b.var, b.secret
            ));
        }
        env.push((b.var.clone(), value));
    }
    Ok(Env(env))
}

/// A secret's value when no field is named: its only field (a `local.generated` value, a
/// plain Secrets Manager string), else its `value` field, else the whole data as JSON (a
/// JSON Secrets Manager secret, a database user: name a field instead to get one of them).
fn whole(data: &SecretData) -> SecretString {
    let names = data.field_names();
    let only = match names.as_slice() {
        [one] => Some(one.as_str()),
        _ => names.iter().any(|n| n == "value").then_some("value"),
    };
    match only.and_then(|field| data.field(field)) {
        Some(value) => value,
        None => SecretString::from(data.expose_json()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(var: &str, spec: &str) -> EnvArg {
        EnvArg {
            var: var.into(),
            spec: spec.into(),
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_spec_splits_at_the_longest_readable_name() {
        let readable = names(&["db", "db.prod", "api"]);
        let split = |spec| {
            let b = &bind(&[arg("V", spec)], &readable)[0];
            (b.secret.clone(), b.field.clone())
        };
        assert_eq!(split("api"), ("api".into(), None));
        assert_eq!(split("db.password"), ("db".into(), Some("password".into())));
        assert_eq!(split("db.prod"), ("db.prod".into(), None), "a whole name wins");
        assert_eq!(split("db.prod.password"), ("db.prod".into(), Some("password".into())));
        assert_eq!(split("db.prod.tls.crt"), ("db.prod".into(), Some("tls.crt".into())));
        // Unknown (or not listed): at the first dot, so the agent's answer names "nope".
        assert_eq!(split("nope.field.x"), ("nope".into(), Some("field.x".into())));
        assert_eq!(split("nope"), ("nope".into(), None));
        let unlisted = &bind(&[arg("V", "db.password")], &[])[0];
        assert_eq!(
            (unlisted.secret.as_str(), unlisted.field.as_deref()),
            ("db", Some("password"))
        );
    }

    fn data(json: &str) -> SecretData {
        SecretData::from_json(json).unwrap()
    }

    #[test]
    fn a_secret_without_a_field_gives_its_only_field_its_value_field_or_its_json() {
        assert_eq!(whole(&data(r#"{"token":"t-1"}"#)).expose(), "t-1");
        assert_eq!(whole(&data(r#"{"value":"v-1","note":"n"}"#)).expose(), "v-1");
        assert_eq!(whole(&data(r#"{"port":5432}"#)).expose(), "5432");
        assert_eq!(
            whole(&data(r#"{"username":"u","password":"p"}"#)).expose(),
            r#"{"password":"p","username":"u"}"#
        );
    }

    #[test]
    fn render_names_the_variable_secret_and_field_at_fault_never_the_value() {
        let db = data(r#"{"username":"app","password":"not-a-real-value"}"#);
        let lookup = |name: &str| (name == "db").then_some(&db);
        let bindings = bind(&[arg("PGUSER", "db.username"), arg("PGPASSWORD", "db.password")], &[]);
        let env = render(&bindings, lookup).unwrap();
        assert_eq!(env.0[0].0, "PGUSER");
        assert_eq!(env.0[0].1.expose(), "app");
        assert_eq!(env.0[1].1.expose(), "not-a-real-value");

        let e = render(&bind(&[arg("P", "db.pasword")], &[]), lookup).unwrap_err();
        assert_eq!(e, r#"P: secret db has no field "pasword" (it has: password, username)"#);
        let nul = data("{\"value\":\"a\\u0000b\"}");
        let e = render(&bind(&[arg("X", "nul")], &[]), |_| Some(&nul)).unwrap_err();
        assert!(
            e.contains("NUL byte") && e.starts_with("X: the value of secret nul"),
            "{e}"
        );
    }
}
