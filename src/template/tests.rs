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
    assert!(
        matches!(&err, RenderError::UnknownField { field, .. } if field == "missing"),
        "{err}"
    );
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

// ---- several secrets, names, filters, check-time errors

const DATABASE: &[&str] = &["username", "password"];

/// Configured secrets: `db` (fields fixed: username, password), `api` and `my-db` (fields
/// from the data).
fn catalog() -> BTreeMap<SecretName, Fields> {
    BTreeMap::from([
        (SecretName::new("db"), Some(DATABASE)),
        (SecretName::new("api"), None),
        (SecretName::new("my-db"), None),
    ])
}

fn bind(own: Option<&str>, template: &str) -> Result<Bound, BindError> {
    let secrets = catalog();
    Template::parse(template)
        .unwrap()
        .bind(Names { own, secrets: &secrets })
}

/// Served data: `db` a login, `api` a key map with awkward field names, `my-db` a login.
fn served() -> BTreeMap<SecretName, SecretData> {
    let data = |json: &str| SecretData::from_json(json).unwrap();
    BTreeMap::from([
        (SecretName::new("db"), data(r#"{"username":"app","password":"pw-1"}"#)),
        (
            SecretName::new("api"),
            data(r#"{"value":"k-1","api-key":"k-2","tls.crt":"c","api":"field named api","n":7}"#),
        ),
        (SecretName::new("my-db"), data(r#"{"password":"pw-2"}"#)),
    ])
}

fn fill(own: Option<&str>, template: &str) -> String {
    bind(own, template)
        .unwrap()
        .render(served())
        .unwrap()
        .expose()
        .to_owned()
}

#[test]
fn qualified_names_combine_several_secrets_in_one_file() {
    let bound = bind(
        None,
        "DB={{ db.username }}:{{db.password}}\nKEY={{ api.value }}\nX={{ api[\"api-key\"] }}\n",
    )
    .unwrap();
    assert_eq!(bound.secrets(), [SecretName::new("db"), SecretName::new("api")]);
    assert_eq!(
        bound.render(served()).unwrap().expose(),
        "DB=app:pw-1\nKEY=k-1\nX=k-2\n"
    );
    // A name that is not an identifier is reached through `secrets`.
    assert_eq!(fill(None, "P={{ secrets[\"my-db\"].password }}"), "P=pw-2");
    assert_eq!(
        bind(None, "{{ secrets[\"my-db\"][\"password\"] }}").unwrap().secrets(),
        [SecretName::new("my-db")]
    );
    // Non-string JSON values are their JSON text, as for bare fields.
    assert_eq!(fill(None, "{{ api.n }}"), "7");
}

#[test]
fn bare_names_are_fields_of_the_files_own_secret_and_secret_names_come_first() {
    // As before: the file's own secret's fields, by their exact text, even when not identifiers.
    let bound = bind(Some("api"), "{{ value }} {{api-key}} {{ tls.crt }}").unwrap();
    assert_eq!(bound.secrets(), [SecretName::new("api")]);
    assert_eq!(bound.render(served()).unwrap().expose(), "k-1 k-2 c");
    // Other secrets by name, and the own secret's fields with filters.
    assert_eq!(fill(Some("api"), "{{ value | base64 }} {{ db.username }}"), "ay0x app");
    assert_eq!(
        bind(Some("api"), "{{ db.username }}").unwrap().secrets(),
        [SecretName::new("api"), SecretName::new("db")],
        "the own secret first, then the template's"
    );
    // A configured secret's name wins over a field of the same name: `api` here is the secret
    // (refused whole); the field is reached through its secret.
    let e = bind(Some("api"), "{{ api }}").unwrap_err();
    assert_eq!(e.problem, Problem::WholeSecret { name: "api".into() }, "{e}");
    assert_eq!(fill(Some("api"), "{{ api[\"api\"] }}"), "field named api");
}

#[test]
fn each_filter_writes_its_syntax() {
    let tricky = "it's \"q\" $HOME ${X} `id` \\ # = é\n\t ";
    let catalog = BTreeMap::from([(SecretName::new("s"), None)]);
    let data = BTreeMap::from([(
        SecretName::new("s"),
        SecretData::single("v", SecretString::from(tricky)),
    )]);
    let apply = |filter: &str| -> String {
        let template = Template::parse(&format!("{{{{ s.v | {filter} }}}}")).unwrap();
        let bound = template
            .bind(Names {
                own: None,
                secrets: &catalog,
            })
            .unwrap();
        bound.render(data.clone()).unwrap().expose().to_owned()
    };
    let json = apply("json");
    assert_eq!(json, r#""it's \"q\" $HOME ${X} `id` \\ # = é\n\t ""#);
    assert_eq!(serde_json::from_str::<String>(&json).unwrap(), tricky);
    assert_eq!(apply("yaml"), json, "nothing YAML reads differently: the JSON literal");
    assert_eq!(apply("shell"), "'it'\\''s \"q\" $HOME ${X} `id` \\ # = é\n\t '");
    assert_eq!(apply("env"), r#""it's \"q\" $HOME ${:-$}{X} `id` \\ # = é\n\t ""#);
    assert_eq!(
        apply("urlencode"),
        "it%27s%20%22q%22%20%24HOME%20%24%7BX%7D%20%60id%60%20%5C%20%23%20%3D%20%C3%A9%0A%09%20"
    );
    assert_eq!(
        percent_encoding::percent_decode_str(&apply("urlencode"))
            .decode_utf8()
            .unwrap(),
        tricky
    );
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(apply("base64"))
        .unwrap();
    assert_eq!(decoded, tricky.as_bytes());
    // Filters chain, left to right.
    assert_eq!(
        Template::parse("{{ v | base64 | json }}")
            .unwrap()
            .render(&SecretData::single("v", SecretString::from("a")))
            .unwrap()
            .expose(),
        "\"YQ==\""
    );
}

#[test]
fn yaml_escapes_what_yaml_reads_differently_from_json() {
    let value = "a\u{7f}b\u{85}c\u{2028}d\u{feff}e😀\u{1}";
    let yaml = filters::yaml(value);
    assert_eq!(yaml.expose(), "\"a\\u007fb\\u0085c\\u2028d\\ufeffe😀\\u0001\"");
    assert_eq!(
        serde_json::from_str::<String>(yaml.expose()).unwrap(),
        value,
        "still a JSON string"
    );
}

#[test]
fn values_a_syntax_cannot_hold_are_errors_naming_the_filter_not_the_value() {
    let data = SecretData::single("v", SecretString::from("se\0cret"));
    for (filter, says) in [("shell", "shell word"), ("env", "environment variable")] {
        let err = Template::parse(&format!("{{{{ v | {filter} }}}}"))
            .unwrap()
            .render(&data)
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains(says) && message.contains("NUL"), "{message}");
        assert!(!message.contains("se") || !message.contains("cret"), "{message}");
    }
    assert_eq!(
        Template::parse("{{ v | json }}")
            .unwrap()
            .render(&data)
            .unwrap()
            .expose(),
        "\"se\\u0000cret\""
    );
}

#[test]
fn check_finds_each_mistake_and_says_where() {
    let problem = |own: Option<&str>, template: &str| bind(own, template).unwrap_err();

    let e = problem(None, "A=1\nB={{ db.password | }}\n");
    assert_eq!((e.line, e.placeholder.as_str()), (2, "db.password |"), "{e}");
    assert!(matches!(e.problem, Problem::Syntax(_)), "{e}");
    assert_eq!(
        e.column, 18,
        "the column of the error, at the `|` with nothing after it: {e}"
    );
    assert!(
        e.to_string()
            .starts_with("line 2, column 18: {{ db.password | }}: syntax error"),
        "{e}"
    );

    let e = problem(None, "x {{ secrets[\"nope\"].value }}");
    assert_eq!((e.line, e.column), (1, 3));
    assert_eq!(
        e.to_string(),
        "line 1, column 3: {{ secrets[\"nope\"].value }}: unknown secret \"nope\" (configured: api, db, my-db)"
    );
    let e = problem(None, "{{ dbx.password }}");
    assert!(
        matches!(&e.problem, Problem::UnknownName { name, .. } if name == "dbx"),
        "{e}"
    );
    assert!(e.to_string().contains("sets no `secret`"), "{e}");
    let e = problem(None, "{{ db.pasword }}");
    assert_eq!(
        e.to_string(),
        "line 1, column 1: {{ db.pasword }}: secret \"db\" has no field \"pasword\" (its fields: username, password)"
    );
    let e = problem(Some("db"), "U={{ pasword }}");
    assert!(e.to_string().contains("has no field \"pasword\""), "{e}");
    let e = problem(None, "{{ db.password | jsn }}");
    assert_eq!(e.problem, Problem::UnknownFilter { name: "jsn".into() }, "{e}");
    assert!(
        e.to_string()
            .contains("filters: json, yaml, shell, env, urlencode, base64"),
        "{e}"
    );
    let e = problem(None, "{{ db | json }}");
    assert!(e.to_string().contains("the whole secret \"db\""), "{e}");
    let e = problem(None, "{{ db.password | json(2) }}");
    assert!(matches!(e.problem, Problem::Invalid(_)), "{e}");
    let e = problem(None, "{{ my-db.password }}");
    assert_eq!(e.problem, Problem::NotAnIdentifier { name: "my-db".into() }, "{e}");
    assert!(e.to_string().contains("write secrets[\"my-db\"].FIELD"), "{e}");
    let e = problem(None, "{{ secrets }}");
    assert!(e.to_string().contains("secrets[\"NAME\"].FIELD"), "{e}");
    // Built-in filters and functions do not exist.
    let e = problem(None, "{{ db.password | upper }}");
    assert_eq!(e.problem, Problem::UnknownFilter { name: "upper".into() }, "{e}");
    assert!(matches!(
        problem(None, "{{ range(3) }}").problem,
        Problem::UnknownName { .. }
    ));
    // Fields of kinds that depend on the data are found at render, named with the fields there.
    let err = bind(None, "{{ api.nope }}").unwrap().render(served()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template names unknown field \"nope\" of secret \"api\" (the secret has: api, api-key, n, tls.crt, value)"
    );
}

#[test]
fn a_render_error_never_quotes_a_value() {
    // The stand-ins of check take the `else` branch; the served data takes the other, whose
    // arithmetic minijinja would report with the value in its message.
    let bound = bind(None, "{{ db.password - 1 if db.username else db.username }}").unwrap();
    let err = bound.render(served()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("invalid operation"), "{message}");
    assert!(!message.contains("pw-1"), "{message}");
}

#[test]
fn names_only_in_branches_check_does_not_take_are_still_rendered_secrets() {
    let bound = bind(None, "{{ db.username if db.password else api.value }}").unwrap();
    assert_eq!(bound.secrets(), [SecretName::new("db"), SecretName::new("api")]);
}
