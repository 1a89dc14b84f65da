//! What each format's view holds, and where its lines point back to.

use super::*;

fn view(path: &str, text: &str) -> Vec<(String, (usize, usize))> {
    let Some(view) = View::of(path, text.as_bytes()) else {
        return Vec::new();
    };
    let text = String::from_utf8(view.text().to_vec()).expect("views of UTF-8 are UTF-8");
    text.lines()
        .enumerate()
        .map(|(i, l)| (l.to_owned(), view.origin(i + 1)))
        .collect()
}

fn has(lines: &[(String, (usize, usize))], line: &str, at: (usize, usize)) {
    assert!(
        lines.iter().any(|(l, o)| l == line && *o == at),
        "no {line:?} at {at:?} in {lines:#?}"
    );
}

#[test]
fn formats_are_chosen_by_name_including_archive_members() {
    assert_eq!(Format::of("deploy/app.yaml"), Some(Format::Yaml));
    assert_eq!(Format::of("site.zip!Web.Config"), Some(Format::Xml));
    assert_eq!(Format::of("n.ipynb"), Some(Format::Notebook));
    assert_eq!(Format::of("main.tf"), Some(Format::Sections));
    assert_eq!(Format::of("keys.h"), Some(Format::Code));
    assert_eq!(Format::of("README.md"), None);
    assert_eq!(Format::of("Makefile"), None);
}

#[test]
fn yaml_pairs_values_on_the_next_line_nested_keys_env_entries_and_secret_data() {
    let text = "\
spec:
  env:
  - name: TWILIO_AUTH_TOKEN
    value:
      \"abc123def456\"
fastly:
  api_token: >-
    abcd1234
    efgh5678
kind: Secret
data:
  password: aHVudGVyMi1zZWNyZXQ=
";
    let lines = view("k.yaml", text);
    has(&lines, "TWILIO_AUTH_TOKEN = \"abc123def456\"", (5, 7));
    has(&lines, "fastly_api_token = \"abcd1234efgh5678\"", (8, 5));
    has(&lines, "fastly_api_token = \"abcd1234 efgh5678\"", (8, 5));
    has(&lines, "password = \"hunter2-secret\"", (12, 13));
}

#[test]
fn yaml_does_not_join_prose_that_fits_on_its_line_and_keeps_pairs_read_before_an_error() {
    let lines = view("a.yml", "hint: use the pet name\nok: fine\nbad: [unclosed\n");
    assert!(!lines.iter().any(|(l, _)| l.contains("usethepetname")), "{lines:#?}");
    has(&lines, "ok = \"fine\"", (2, 5));
}

#[test]
fn xml_pairs_app_settings_attributes_element_text_and_plist_keys() {
    let text = r#"<configuration>
  <appSettings>
    <add key="Twilio:ApiKey" value="k&amp;v123456" />
    <add name="Main" connectionString="Server=db;Password=pw123456" />
  </appSettings>
  <servers><server><password>s3cr3t-value</password></server></servers>
  <dict><key>ApiToken</key><string>tok-123456</string></dict>
</configuration>
"#;
    let lines = view("web.config", text);
    has(&lines, "Twilio_ApiKey = \"k&v123456\"", (3, 37));
    has(&lines, "add_value = \"k&v123456\"", (3, 37));
    has(
        &lines,
        "Main_connectionString = \"Server=db;Password=pw123456\"",
        (4, 40),
    );
    has(&lines, "server_password = \"s3cr3t-value\"", (6, 30));
    has(&lines, "ApiToken = \"tok-123456\"", (7, 36));
}

#[test]
fn notebook_cells_are_their_text_at_the_notebook_lines() {
    let text = r#"{
 "cells": [
  {
   "cell_type": "code",
   "source": [
    "import os\n",
    "KEY = \"abc\\\"def\"\n"
   ],
   "outputs": [{"output_type": "stream", "text": "printed\n"}]
  }
 ]
}
"#;
    let lines = view("n.ipynb", text);
    has(&lines, "import os", (6, 6));
    has(&lines, "KEY = \"abc\\\"def\"", (7, 6));
    let minified: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines = view("n.ipynb", &minified);
    assert!(
        lines.iter().any(|(l, o)| l == "import os" && *o == (1, 1)),
        "{lines:#?}"
    );
}

#[test]
fn sections_qualify_keys_by_section_and_block_and_join_continued_properties() {
    let text = "\
[stripe]
secret_key = \"abc123\" 
plain = 1 ; note
provider \"datadog\" {
  api_key = \"dd123\"
}
long.token=abc\\
    def
";
    let lines = view("x.conf", text);
    has(&lines, "stripe_secret_key = \"abc123\"", (2, 14));
    has(&lines, "stripe_plain = \"1\"", (3, 9));
    has(&lines, "datadog_api_key = \"dd123\"", (5, 13));
    has(&lines, "stripe_long.token = \"abcdef\"", (7, 12));
}

#[test]
fn code_constants_in_forms_the_assignment_rules_do_not_read() {
    let c = "\
#define API_TOKEN \"abcdefgh1234\"
NSString *const kSecret = @\"abcdefgh3456\";
char pass[] = \"abcdefgh0000\";
let short = \"abc\";
";
    let lines = view("k.m", c);
    has(&lines, "API_TOKEN = \"abcdefgh1234\"", (1, 20));
    has(&lines, "kSecret = \"abcdefgh3456\"", (2, 29));
    has(&lines, "pass = \"abcdefgh0000\"", (3, 16));
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let rust = "fn f(s: &str) {}\nconst KEY: &str = \"abcdefgh5678\";\nstatic K: &[u8] = b\"abcdefgh9999\";\n";
    let lines = view("k.rs", rust);
    has(&lines, "KEY = \"abcdefgh5678\"", (2, 20));
    has(&lines, "K = \"abcdefgh9999\"", (3, 21));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let lines = view("k.go", "var k = []byte(\"abcdefgh7890\")\n");
    has(&lines, "k = \"abcdefgh7890\"", (1, 17));
    assert!(
        view("k.c", "NSString *k = @\"abcdefgh3456\";\n").is_empty(),
        "@\"...\" is Objective-C's"
    );
}

#[test]
fn values_with_quotes_are_quoted_the_other_way_and_long_or_large_input_has_no_view() {
    let lines = view("a.yaml", "k: say \"hi\" now\n");
    has(&lines, "k = 'say \"hi\" now'", (1, 4));
    let big = format!("k: {}\n", "a".repeat(MAX_FILE));
    assert!(View::of("a.yaml", big.as_bytes()).is_none());
}

#[test]
fn yaml_the_parser_refuses_is_read_line_by_line_from_the_error() {
    let text = "\
ok: fine
env:
{{- if .Values.enabled }}
- name: API_TOKEN
  value: \"abc123\"
stripe_key:
  sk-value-123
";
    let lines = view("chart/templates/d.yaml", text);
    has(&lines, "ok = \"fine\"", (1, 5));
    has(&lines, "API_TOKEN = \"abc123\"", (5, 10));
    has(&lines, "stripe_key = \"sk-value-123\"", (7, 3));
}
