//! Recall and precision of the built-in rules on a labelled corpus built at run time.
//!
//! Every rule's positive examples (templates, expanded afresh for each use so no key-shaped
//! literal is ever committed) are planted in realistic files: `.env`, shell, YAML (config,
//! docker-compose, GitHub workflows, Helm values), JSON, Python, JS/TS, Go, Java, Ruby, PHP,
//! Terraform, Dockerfiles, Jupyter notebooks, minified JS, properties/INI, PowerShell and batch
//! files, Markdown, Kubernetes Secrets (base64 `data` and `stringData`), natural files
//! (`.netrc`, `.pypirc`, key files...), with CRLF line ends and in UTF-16 (with and without a
//! BOM). Around them go decoys that must not be reported: AWS's documented example keys,
//! placeholders (`${VAR}`, `<your-token>`, `changeme`, `xxxx`, masked provider tokens), code
//! that reads a secret instead of holding one, hashes and commit ids, UUIDs, lockfile integrity
//! strings, public keys and certificates, checksum-invalid GitHub/npm tokens, and every rule's
//! own negative examples.
//!
//! A label is what the engine finds in the example on its own (the rule's secret, plus any
//! other secret the example happens to hold, e.g. the Google API key inside a Google Chat
//! webhook URL); after embedding, a finding is a true positive when it is in the planted
//! lines, of the label's family and carries the label's secret (compared without quoting,
//! escapes and whitespace). One scan (`--format json --no-redact`) covers the whole corpus; the
//! test prints a table per family and per format (`cargo test --test e2e scan_corpus --
//! --nocapture`) and asserts recall >= 0.97 and precision >= 0.95 for every family.
//! `SIDEKEY_CORPUS_SEED` changes the seed; `SIDEKEY_CORPUS_DIR` keeps the corpus there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sidekey_scanner::engine::Engine;
use sidekey_scanner::rules::{self, examples::expand};

use crate::support::bin;

const MIN_RECALL: f64 = 0.97;
const MIN_PRECISION: f64 = 0.95;
/// Each family gets at least about this many plants (small families: more formats per example).
const PLANTS_PER_FAMILY: usize = 120;
const DEFAULT_SEED: u64 = 0x5ca9_c0de;

// ------------------------------------------------------------------------------------------
// Shapes: what an example looks like, so it can be written in another file format.

/// An expanded example (or decoy), classified.
#[derive(Debug, Clone)]
enum Shape {
    /// `NAME=value`, `name: value`, `export NAME="value"`...
    Assign { name: String, value: String, natural: Kind },
    /// A JSON object (one line in the example).
    Json(String),
    /// Several lines: a key file, `.netrc`, a manifest...
    Multi { text: String, crlf: bool },
    /// A shell command.
    Command(String),
    /// A line of code in a language.
    Code(Lang, String),
    /// Anything else on one line: a URL, a header, a bare token, an XML element.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Js,
    Php,
}

const COMMANDS: &[&str] = &[
    "curl",
    "git",
    "pip",
    "kubeadm",
    "dotnet",
    "composer",
    "gitlab-runner",
    "helm",
    "echo",
    "huggingface-cli",
    "vault",
    "docker",
    "wget",
    "npm",
];

fn classify(text: &str) -> Shape {
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.contains('\n') {
        return Shape::Multi {
            text: trimmed.replace("\r\n", "\n"),
            crlf: trimmed.contains("\r\n"),
        };
    }
    let line = trimmed.trim();
    if line.contains("\"cell_type\"") {
        // A piece of a notebook file as written (not valid JSON on its own).
        return Shape::Multi {
            text: line.to_owned(),
            crlf: false,
        };
    }
    if line.starts_with('{') && serde_json::from_str::<serde_json::Value>(line).is_ok() {
        return Shape::Json(line.to_owned());
    }
    if line.starts_with('"') {
        let wrapped = format!("{{{line}}}");
        if serde_json::from_str::<serde_json::Value>(&wrapped).is_ok() {
            return Shape::Json(wrapped);
        }
    }
    if line.starts_with('<') {
        return Shape::Other(line.to_owned());
    }
    let first = line.split_whitespace().next().unwrap_or("");
    if COMMANDS.contains(&first) {
        return Shape::Command(line.to_owned());
    }
    if ["const ", "let ", "var ", "export const "]
        .iter()
        .any(|p| line.starts_with(p))
    {
        return Shape::Code(Lang::Js, line.to_owned());
    }
    if line.starts_with('$') || line.starts_with("define(") {
        return Shape::Code(Lang::Php, line.to_owned());
    }
    if let Some(shape) = assignment(line) {
        return shape;
    }
    let eq = line.find('=').unwrap_or(line.len());
    if line[..eq].contains(['(', '[', '{']) || line[eq..].trim_start_matches('=').trim_start().starts_with(['{', '(']) {
        return Shape::Code(Lang::Python, line.to_owned());
    }
    if line.contains(" = ") && line.contains('(') {
        return Shape::Code(Lang::Python, line.to_owned());
    }
    Shape::Other(line.to_owned())
}

/// `NAME=value` and friends; `None` when the line is not a simple assignment.
fn assignment(line: &str) -> Option<Shape> {
    let (mut rest, mut natural) = (line, Kind::Env);
    for (prefix, kind) in [
        ("export ", Kind::Shell),
        ("ENV ", Kind::Dockerfile),
        ("- ", Kind::Compose),
    ] {
        if let Some(r) = rest.strip_prefix(prefix) {
            rest = r.trim_start();
            natural = kind;
        }
    }
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let after = rest[name_len..].trim_start();
    if after.starts_with("::") {
        return None;
    }
    let (sep, value) = if let Some(v) = after.strip_prefix('=') {
        ('=', v.trim())
    } else if let Some(v) = after.strip_prefix(':').filter(|v| v.starts_with([' ', '\t'])) {
        (':', v.trim())
    } else {
        return None;
    };
    let spaced = rest[name_len..].starts_with(' ');
    let value = match value.chars().next() {
        Some(q @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(q) => {
            let inner = &value[1..value.len() - 1];
            if inner.contains(q) {
                return None;
            }
            inner
        }
        Some(_) => {
            if value.contains(char::is_whitespace) || value.contains(['"', '\'']) {
                return None;
            }
            value
        }
        None => return None,
    };
    if value.starts_with("//") || (value.contains(';') && value.contains('=')) || value.contains('`') {
        return None;
    }
    if natural == Kind::Env {
        if sep == ':' {
            natural = Kind::Yaml;
        } else if name.contains('.') {
            natural = Kind::Properties;
        } else if spaced {
            natural = Kind::Python;
        }
    }
    Some(Shape::Assign {
        name: name.to_owned(),
        value: value.to_owned(),
        natural,
    })
}

// ------------------------------------------------------------------------------------------
// File kinds and how a shape is written in each.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Env,
    Shell,
    Yaml,
    Compose,
    GhEnv,
    GhRun,
    Json,
    Python,
    Js,
    Ts,
    Go,
    Java,
    Ruby,
    Php,
    Terraform,
    Tfvars,
    Dockerfile,
    Notebook,
    MinJs,
    Properties,
    Ini,
    Ps1,
    Bat,
    Utf16Txt,
    Txt,
    K8sData,
    K8sStringData,
    Markdown,
    YamlBlock,
    YamlNext,
    YamlWrapped,
    K8sEnv,
    XmlSettings,
    CDefine,
    IniSection,
    Raw,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Env => "dotenv",
            Kind::Shell => "shell",
            Kind::Yaml => "yaml",
            Kind::Compose => "docker-compose",
            Kind::GhEnv => "gh-workflow-env",
            Kind::GhRun => "gh-workflow-run",
            Kind::Json => "json",
            Kind::Python => "python",
            Kind::Js => "javascript",
            Kind::Ts => "typescript",
            Kind::Go => "go",
            Kind::Java => "java",
            Kind::Ruby => "ruby",
            Kind::Php => "php",
            Kind::Terraform => "terraform",
            Kind::Tfvars => "tfvars",
            Kind::Dockerfile => "dockerfile",
            Kind::Notebook => "notebook",
            Kind::MinJs => "minified-js",
            Kind::Properties => "properties",
            Kind::Ini => "ini",
            Kind::Ps1 => "powershell",
            Kind::Bat => "batch",
            Kind::Utf16Txt => "text",
            Kind::Txt => "text",
            Kind::K8sData => "k8s-secret-base64",
            Kind::K8sStringData => "k8s-secret-stringdata",
            Kind::Markdown => "markdown",
            Kind::YamlBlock => "yaml-block",
            Kind::YamlNext => "yaml-next-line",
            Kind::YamlWrapped => "yaml-wrapped",
            Kind::K8sEnv => "k8s-env",
            Kind::XmlSettings => "xml-appsettings",
            Kind::CDefine => "c-define",
            Kind::IniSection => "ini-section",
            Kind::Raw => "natural-file",
        }
    }

    /// The kinds a shape can be written in, its most natural first.
    fn for_shape(shape: &Shape) -> Vec<Kind> {
        use Kind::*;
        let mut kinds = match shape {
            Shape::Assign { name, natural, .. } => {
                let mut k = vec![*natural];
                if name.contains('.') {
                    k.extend([Properties, Yaml, Json, Ini, MinJs, Utf16Txt]);
                } else {
                    k.extend([
                        Env,
                        Shell,
                        Yaml,
                        Compose,
                        GhEnv,
                        Json,
                        Python,
                        Js,
                        Ts,
                        Go,
                        Java,
                        Ruby,
                        Php,
                        Terraform,
                        Tfvars,
                        Dockerfile,
                        Notebook,
                        MinJs,
                        Properties,
                        Ini,
                        Ps1,
                        Bat,
                        Utf16Txt,
                        K8sData,
                        K8sStringData,
                        Markdown,
                        YamlNext,
                        YamlWrapped,
                        K8sEnv,
                        XmlSettings,
                        CDefine,
                        IniSection,
                    ]);
                }
                k
            }
            Shape::Json(_) => vec![Raw, Json, Python, Js, Ts, Notebook, MinJs, Yaml, Ruby, Utf16Txt],
            Shape::Multi { text, .. } => {
                let mut k = vec![Raw, YamlBlock, Python, Terraform, Markdown, Java, Go];
                if text.contains("\"cell_type\"") {
                    k.truncate(1);
                }
                if !text.contains("apiVersion") {
                    // Not a manifest within a manifest.
                    k.push(K8sStringData);
                }
                if text.starts_with("-----BEGIN ") {
                    k.extend([Json, MinJs, Notebook]);
                }
                k
            }
            Shape::Command(_) => vec![Shell, Dockerfile, GhRun, Markdown, Python, Notebook, Ps1],
            Shape::Code(Lang::Python, _) => vec![Python, Notebook, Markdown],
            Shape::Code(Lang::Js, _) => vec![Js, Ts, MinJs, Markdown],
            Shape::Code(Lang::Php, _) => vec![Php, Markdown],
            Shape::Other(line) => {
                if line.starts_with('<') || line.starts_with("machine ") {
                    vec![Raw, Markdown, Txt, Python, Utf16Txt]
                } else {
                    vec![Txt, Yaml, Json, Python, Js, Go, Java, MinJs, Markdown, Utf16Txt, Env]
                }
            }
        };
        let mut seen = Vec::new();
        kinds.retain(|k| {
            let fresh = !seen.contains(k);
            seen.push(*k);
            fresh
        });
        kinds
    }

    /// Line prefix of the fragments in this kind's files.
    fn indent(self) -> &'static str {
        match self {
            Kind::Yaml | Kind::Json => "    ",
            Kind::Compose | Kind::GhEnv | Kind::GhRun => "      ",
            Kind::Go => "\t",
            Kind::Java => "    ",
            Kind::Terraform | Kind::K8sData | Kind::K8sStringData | Kind::YamlBlock => "  ",
            Kind::YamlNext | Kind::YamlWrapped => "  ",
            Kind::K8sEnv => "        ",
            Kind::XmlSettings => "    ",
            _ => "",
        }
    }
}

/// A double-quoted string literal (JSON escaping is valid in every language used here).
/// A double-quoted string literal. Backslashes in the value are escapes the value already
/// carries (a PEM key with `\n` in a `.env`), so they are kept; quotes and control characters are
/// escaped as JSON does (valid in every language used here).
fn dq(s: &str) -> String {
    if s.contains(|c: char| c == '"' || c.is_control()) {
        serde_json::to_string(s).unwrap()
    } else {
        format!("\"{s}\"")
    }
}

fn sq_or_dq(s: &str) -> String {
    if s.contains(['\'', '\\']) {
        dq(s)
    } else {
        format!("'{s}'")
    }
}

/// A YAML scalar: plain when safe, else double-quoted.
fn yaml_scalar(v: &str, rng: &mut StdRng) -> String {
    let plain = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "_./+=-".contains(c))
        && v.starts_with(|c: char| c.is_ascii_alphanumeric());
    if plain && rng.gen_bool(0.5) {
        v.to_owned()
    } else {
        dq(v)
    }
}

fn env_value(v: &str, rng: &mut StdRng) -> String {
    if v.contains(|c: char| c.is_whitespace() || "#;&|<>$'\"`".contains(c)) || rng.gen_bool(0.25) {
        dq(v)
    } else {
        v.to_owned()
    }
}

/// Re-indents one-line JSON over several lines (string contents untouched).
fn pretty_json(json: &str, indent: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = json.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let line = lines.last_mut().unwrap();
        if in_string {
            line.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                line.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
                if next == Some(&close) {
                    line.push(c);
                    line.push(close);
                    i += 1;
                    while chars[i] != close {
                        i += 1;
                    }
                } else {
                    line.push(c);
                    depth += 1;
                    lines.push(format!("{indent}{}", "  ".repeat(depth)));
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                lines.push(format!("{indent}{}{c}", "  ".repeat(depth)));
            }
            ',' => {
                line.push(c);
                lines.push(format!("{indent}{}", "  ".repeat(depth)));
            }
            ':' => line.push_str(": "),
            c if c.is_whitespace() => {}
            c => line.push(c),
        }
        i += 1;
    }
    lines[0] = format!("{indent}{}", lines[0]);
    lines
}

fn compact_json(json: &str) -> String {
    pretty_json(json, "")
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("")
        .replace(": ", ":")
}

fn python_literal(json: &str) -> String {
    // JSON objects of strings, numbers and booleans read as Python once the constants are renamed.
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "true" => "True",
            "false" => "False",
            "null" => "None",
            w => w,
        });
        word.clear();
    };
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    for (i, part) in name.split('_').filter(|p| !p.is_empty()).enumerate() {
        let lower = part.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut chars = lower.chars();
            if let Some(f) = chars.next() {
                out.push(f.to_ascii_uppercase());
                out.extend(chars);
            }
        }
    }
    out
}

fn key_for(line: &str) -> &'static str {
    if line.contains("://") {
        "endpoint"
    } else if line.contains(": ") {
        "header"
    } else {
        "value"
    }
}

/// Writes `shape` as lines of a `kind` file (already indented for it); `None` when it does not
/// fit. `n` numbers identifiers so that several fragments in one file stay distinct.
fn render(shape: &Shape, kind: Kind, n: usize, keywords: &[String], rng: &mut StdRng) -> Option<Vec<String>> {
    use Kind::*;
    let ind = kind.indent();
    // A renamed identifier (camelCase, dotted) keeps the rule's keywords, as a developer keeps
    // the provider's name in it: `IC_API_KEY` does not become `icApiKey`.
    let keeps = |from: &str, to: &str| {
        let (from, to) = (from.to_ascii_lowercase(), to.to_ascii_lowercase());
        keywords
            .iter()
            .all(|k| !from.contains(k.as_str()) || to.contains(k.as_str()))
    };
    let camel = |name: &str| {
        let c = camel(name);
        if keeps(name, &c) {
            c
        } else {
            name.to_owned()
        }
    };
    let one = |s: String| Some(vec![format!("{ind}{s}")]);
    match shape {
        Shape::Assign { name, value, .. } => {
            let (name, v) = (name.as_str(), value.as_str());
            let lower = name.to_ascii_lowercase();
            match kind {
                Env => one(format!("{name}={}", env_value(v, rng))),
                Shell => one(match rng.gen_range(0..3) {
                    0 => format!("export {name}={}", dq(v)),
                    1 => format!("export {name}={}", sq_or_dq(v)),
                    _ => format!("{name}={}", sq_or_dq(v)),
                }),
                Yaml => {
                    let key = if rng.gen_bool(0.5) { lower } else { name.to_owned() };
                    one(format!("{key}: {}", yaml_scalar(v, rng)))
                }
                Compose | GhEnv => {
                    if kind == Compose && rng.gen_bool(0.5) {
                        one(format!("- {name}={v}"))
                    } else {
                        one(format!("{name}: {}", yaml_scalar(v, rng)))
                    }
                }
                Json => {
                    let key = match rng.gen_range(0..3) {
                        0 => lower,
                        1 => camel(name),
                        _ => name.to_owned(),
                    };
                    one(format!("{}: {}", dq(&key), dq(v)))
                }
                Python => one(match rng.gen_range(0..3) {
                    0 => format!("{name} = {}", dq(v)),
                    1 => format!("os.environ[{}] = {}", dq(name), sq_or_dq(v)),
                    _ => format!("{lower} = {}", sq_or_dq(v)),
                }),
                Js => one(match rng.gen_range(0..3) {
                    0 => format!("const {name} = {};", dq(v)),
                    1 => format!("process.env.{name} = {};", sq_or_dq(v)),
                    _ => format!("export const {} = {};", camel(name), sq_or_dq(v)),
                }),
                Ts => one(match rng.gen_range(0..2) {
                    0 => format!("export const {name}: string = {};", dq(v)),
                    _ => format!("const {} = {} as const;", camel(name), sq_or_dq(v)),
                }),
                Go => one(match rng.gen_range(0..2) {
                    0 => format!("{} := {}", camel(name), dq(v)),
                    _ => format!("const {name} = {}", dq(v)),
                }),
                Java => one(format!("private static final String {name} = {};", dq(v))),
                Ruby => one(match rng.gen_range(0..3) {
                    0 => format!("{name} = {}", sq_or_dq(v)),
                    1 => format!("ENV[{}] ||= {}", dq(name), dq(v)),
                    _ => format!("{lower}: {},", dq(v)),
                }),
                Php => one(match rng.gen_range(0..2) {
                    0 => format!("define('{name}', {});", sq_or_dq(v)),
                    _ => format!("$config['{lower}'] = {};", sq_or_dq(v)),
                }),
                Terraform | Tfvars => one(format!("{lower} = {}", dq(v))),
                Dockerfile => one(match rng.gen_range(0..3) {
                    0 => format!("ENV {name}={}", env_value(v, rng)),
                    1 => format!("ARG {name}={}", env_value(v, rng)),
                    _ => format!("ENV {name}={v} \\\n    APP_ENV=production"),
                })
                .map(|l| l.join("\n").split('\n').map(str::to_owned).collect()),
                Notebook => Some(vec![match rng.gen_range(0..3) {
                    0 => format!("os.environ[{}] = {}", dq(name), dq(v)),
                    1 => format!("{name} = {}", dq(v)),
                    _ => format!("%env {name}={v}"),
                }]),
                MinJs => Some(vec![format!(
                    "var c{n}={{{}:{},env:\"production\"}}",
                    if name.contains('.') { dq(name) } else { name.to_owned() },
                    dq(v)
                )]),
                Properties => {
                    let dotted = lower.replace('_', ".");
                    let key = if rng.gen_bool(0.5) || name.contains('.') || !keeps(name, &dotted) {
                        name.to_owned()
                    } else {
                        dotted
                    };
                    one(format!("{key}={v}"))
                }
                Ini => one(format!("{lower} = {v}")),
                Ps1 => one(format!("$env:{name} = {}", sq_or_dq(v))),
                Bat => one(if rng.gen_bool(0.5) {
                    format!("set {name}={v}")
                } else {
                    format!("set \"{name}={v}\"")
                }),
                Utf16Txt => one(format!("{name}={v}")),
                K8sData => one(format!(
                    "{name}: {}",
                    base64::engine::general_purpose::STANDARD.encode(v)
                )),
                K8sStringData => one(format!("{name}: {}", dq(v))),
                Markdown => Some(vec![
                    "```sh".into(),
                    format!("export {name}={}", sq_or_dq(v)),
                    "```".into(),
                ]),
                YamlNext => {
                    let key = if rng.gen_bool(0.5) { lower } else { name.to_owned() };
                    Some(vec![format!("{ind}{key}:"), format!("{ind}  {}", yaml_scalar(v, rng))])
                }
                YamlWrapped => {
                    // A long token wrapped over two lines: folded (YAML reads "a b"; the
                    // token is what the author meant) or double-quoted with an escaped line
                    // break (YAML reads "ab").
                    let token = v.len() >= 16 && v.chars().all(|c| c.is_ascii_alphanumeric() || "_./+=-".contains(c));
                    if !token {
                        return None;
                    }
                    let (a, b) = v.split_at(v.len() / 2);
                    Some(if rng.gen_bool(0.5) {
                        vec![
                            format!("{ind}{lower}: >-"),
                            format!("{ind}  {a}"),
                            format!("{ind}  {b}"),
                        ]
                    } else {
                        vec![format!("{ind}{lower}: \"{a}\\"), format!("{ind}  {b}\"")]
                    })
                }
                K8sEnv => Some(vec![
                    format!("{ind}- name: {name}"),
                    format!("{ind}  value: {}", yaml_scalar(v, rng)),
                ]),
                XmlSettings => {
                    let xml = v
                        .replace('&', "&amp;")
                        .replace('"', "&quot;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;");
                    // .NET's nested-section key form: `Twilio:AuthToken`.
                    let key = match name.split_once('_') {
                        Some((section, rest)) if rng.gen_bool(0.5) => {
                            let dotted = format!("{}:{}", camel(section), camel(rest));
                            if keeps(name, &dotted) {
                                dotted
                            } else {
                                name.to_owned()
                            }
                        }
                        _ => name.to_owned(),
                    };
                    one(format!("<add key=\"{key}\" value=\"{xml}\" />"))
                }
                CDefine => one(format!("#define {name} {}", dq(v))),
                IniSection => {
                    // The provider's name as the section, the rest as the key.
                    let (section, key) = match lower.split_once('_') {
                        Some((section, key)) if !key.is_empty() => (section.to_owned(), key.to_owned()),
                        _ => ("app".to_owned(), lower.clone()),
                    };
                    Some(vec![format!("[{section}]"), format!("{key} = {v}")])
                }
                GhRun | Txt | YamlBlock | Raw => None,
            }
        }
        Shape::Json(json) => match kind {
            Json => {
                let mut lines = pretty_json(json, ind);
                lines[0] = format!("{ind}\"section{n}\": {}", lines[0].trim_start());
                Some(lines)
            }
            Python => {
                let mut lines = pretty_json(&python_literal(json), "");
                lines[0] = format!("CONFIG_{n} = {}", lines[0]);
                Some(lines)
            }
            Js | Ts => {
                let mut lines = pretty_json(json, "");
                lines[0] = format!("export const config{n} = {}", lines[0]);
                let last = lines.len() - 1;
                lines[last].push(';');
                Some(lines)
            }
            Notebook if !json.contains('\\') => Some(vec![format!("config = {}", python_literal(json))]),
            MinJs => Some(vec![format!("var j{n}={}", compact_json(json))]),
            Yaml => one(format!("section{n}: {json}")),
            Ruby => Some(vec![format!("CONFIG_{n} = JSON.parse('{json}')")]),
            Utf16Txt | Raw => Some(if rng.gen_bool(0.5) {
                vec![json.clone()]
            } else {
                pretty_json(json, "")
            }),
            _ => None,
        },
        Shape::Multi { text, .. } => {
            let lines: Vec<&str> = text.split('\n').collect();
            let pem = text.starts_with("-----BEGIN ");
            match kind {
                Raw => Some(lines.iter().map(|l| l.to_string()).collect()),
                YamlBlock | K8sStringData => {
                    let mut out = vec![format!("{ind}file{n}: |")];
                    out.extend(lines.iter().map(|l| {
                        if l.is_empty() {
                            String::new()
                        } else {
                            format!("{ind}  {l}")
                        }
                    }));
                    Some(out)
                }
                Python => {
                    let mut out = if pem && rng.gen_bool(0.5) {
                        vec![format!("FILE_{n} = \"\"\"{}", lines[0])]
                    } else {
                        vec![format!("FILE_{n} = \"\"\"\\"), lines[0].to_string()]
                    };
                    out.extend(lines[1..].iter().map(|l| l.to_string()));
                    out.push("\"\"\"".into());
                    Some(out)
                }
                Terraform => {
                    let mut out = vec![format!("{ind}file{n} = <<-EOT")];
                    out.extend(lines.iter().map(|l| {
                        if l.is_empty() {
                            String::new()
                        } else {
                            format!("{ind}  {l}")
                        }
                    }));
                    out.push(format!("{ind}EOT"));
                    Some(out)
                }
                Notebook if pem => {
                    let mut out = vec![format!("data = \"\"\"{}", lines[0])];
                    out.extend(lines[1..].iter().map(|l| l.to_string()));
                    out.push("\"\"\"".into());
                    Some(out)
                }
                Markdown => {
                    let mut out = vec!["```".to_owned()];
                    out.extend(lines.iter().map(|l| l.to_string()));
                    out.push("```".into());
                    Some(out)
                }
                Java => {
                    let mut out = vec![format!("{ind}private static final String FILE_{n} = \"\"\"")];
                    out.extend(lines.iter().map(|l| format!("{ind}    {}", l.replace('\\', "\\\\"))));
                    out.push(format!("{ind}    \"\"\";"));
                    Some(out)
                }
                Go if !text.contains('`') => {
                    let mut out = vec![format!("{ind}file{n} := `")];
                    out.extend(lines.iter().map(|l| l.to_string()));
                    out.push("`".into());
                    out.push(format!("{ind}_ = file{n}"));
                    Some(out)
                }
                Json if pem => one(format!("\"private_key\": {}", dq(&format!("{text}\n")))),
                MinJs if pem => Some(vec![format!("var k{n}={}", dq(&format!("{text}\n")))]),
                _ => None,
            }
        }
        Shape::Command(cmd) => match kind {
            Shell | Ps1 => one(cmd.clone()),
            Dockerfile => one(format!("RUN {cmd}")),
            GhRun => Some(vec![
                format!("{ind}- name: step {n}"),
                format!("{ind}  run: |"),
                format!("{ind}    {cmd}"),
            ]),
            Markdown => Some(vec!["```sh".into(), format!("$ {cmd}"), "```".into()]),
            Python => one(format!("subprocess.run({}, shell=True, check=True)", sq_or_dq(cmd))),
            Notebook => Some(vec![format!("!{cmd}")]),
            _ => None,
        },
        Shape::Code(lang, code) => match (lang, kind) {
            (Lang::Python, Python | Notebook) | (Lang::Js, Js | Ts) | (Lang::Php, Php) => one(code.clone()),
            (Lang::Js, MinJs) => Some(vec![code.trim_end_matches(';').replace(" = ", "=")]),
            (_, Markdown) => Some(vec!["```".into(), code.clone(), "```".into()]),
            _ => None,
        },
        Shape::Other(line) => {
            let key = key_for(line);
            match kind {
                Txt | Raw | Utf16Txt => one(line.clone()),
                Yaml => one(format!("{key}{n}: {}", dq(line))),
                Json => one(format!("\"{key}{n}\": {}", dq(line))),
                Python => one(format!("{}_{n} = {}", key.to_ascii_uppercase(), sq_or_dq(line))),
                Js => one(format!("const {key}{n} = {};", sq_or_dq(line))),
                Go => one(if line.contains('`') {
                    format!("{key}{n} := {}", dq(line))
                } else {
                    format!("{key}{n} := `{line}`")
                }),
                Java => one(format!(
                    "private static final String {}_{n} = {};",
                    key.to_ascii_uppercase(),
                    dq(line)
                )),
                MinJs => Some(vec![format!("var s{n}={}", dq(line))]),
                Markdown => Some(vec!["```".into(), line.clone(), "```".into()]),
                Env if !line.contains(char::is_whitespace) && !line.contains(['"', '\'']) => {
                    one(format!("{}_{n}={}", key.to_ascii_uppercase(), dq(line)))
                }
                _ => None,
            }
        }
    }
}

/// A natural file name for a whole file's content.
fn natural_name(text: &str, n: usize) -> String {
    let t = text.trim_start();
    let name = if t.contains("\"cell_type\"") {
        format!("notebooks/cell{n}.ipynb")
    } else if t.contains("PuTTY-User-Key-File") {
        format!("keys/deploy{n}.ppk")
    } else if t.starts_with("-----BEGIN") || t.starts_with("---- BEGIN") {
        [
            "keys/id_rsa",
            "certs/server.key",
            "secrets/signing.pem",
            "deploy/key.asc",
        ][n % 4]
            .to_owned()
    } else if t.contains("[pypi") || t.contains("[testpypi") || t.contains("[distutils") {
        ".pypirc".into()
    } else if t.starts_with("machine ") {
        ".netrc".into()
    } else if t.contains("[Interface]") {
        "wireguard/wg0.conf".into()
    } else if t.contains("AGE-SECRET-KEY") {
        "age/keys.txt".into()
    } else if t.contains("minisign") {
        "minisign.key".into()
    } else if t.contains("<servers>") {
        "maven/settings.xml".into()
    } else if t.contains("<packageSourceCredentials>") {
        "NuGet.Config".into()
    } else if t.contains("<Server>") {
        "FileZilla/sitemanager.xml".into()
    } else if t.contains("<RSAKeyValue>") {
        "keys/private-key.xml".into()
    } else if t.contains("npmScopes") {
        ".yarnrc.yml".into()
    } else if t.contains("_auth") || t.contains(":_password") || t.starts_with("@") {
        ".npmrc".into()
    } else if t.contains("ossrh") || t.starts_with("signing.") {
        "gradle.properties".into()
    } else if t.starts_with("[registry]") {
        ".cargo/credentials.toml".into()
    } else if t.contains(":rubygems_api_key") {
        ".gem/credentials".into()
    } else if t.contains("app.terraform.io") {
        ".terraformrc".into()
    } else if t.contains("[default]") {
        ".edgerc".into()
    } else if t.contains("[web]") {
        "ansible/inventory.ini".into()
    } else if t.contains("BUNDLE_") {
        ".bundle/config".into()
    } else if t.contains("$apr1$") || t.contains("$2y$") || t.contains("{SHA}") {
        ".htpasswd".into()
    } else if t.starts_with("https://") || t.starts_with("http://") {
        ".git-credentials".into()
    } else if t.contains("\"auths\"") {
        ".docker/config.json".into()
    } else if t.contains("service_account") {
        "gcp/service-account.json".into()
    } else if t.starts_with('{') {
        "data/response.json".into()
    } else if t.contains("users:") || t.contains("apiVersion") || t.starts_with("---") || t.contains("ssh_key:") {
        "k8s/manifest.yaml".into()
    } else {
        "config/settings.conf".into()
    };
    format!("f{n}/{name}")
}

// ------------------------------------------------------------------------------------------
// Labels and plants.

#[derive(Debug, Clone)]
struct Label {
    family: String,
    rule: String,
    /// Normalized forms of the secret (the secret; for base64 `data`, its encoding too).
    forms: Vec<String>,
    /// Other families whose finding also counts: those of other non-generic rules that report
    /// the same secret in the example alone (a URL with credentials is a basic-auth URL and a
    /// `.git-credentials` line), and `kubernetes` in a Kubernetes Secret.
    also: Vec<String>,
}

#[derive(Debug)]
struct Plant {
    file: String,
    first: usize,
    last: usize,
    labels: Vec<Label>,
    format: String,
    text: String,
}

/// The secret with quoting, escapes and whitespace removed, for comparison across formats.
fn norm(s: &str) -> String {
    s.replace("\\n", "")
        .replace("\\r", "")
        .replace("\\t", "")
        .replace("\\\\", "")
        .chars()
        .filter(|c| !c.is_whitespace() && !"\\\"',`".contains(*c))
        .collect()
}

fn same_secret(found: &str, forms: &[String]) -> bool {
    let f = norm(found);
    forms
        .iter()
        .any(|l| f == *l || (f.len() >= 8 && (l.contains(&f) || (f.contains(l.as_str()) && l.len() >= 8))))
}

/// One fragment waiting for a file: lines (without the file's frame) and what they hold.
struct Fragment {
    lines: Vec<String>,
    labels: Vec<Label>,
    text: String,
    natural_name: Option<String>,
    crlf: bool,
}

// ------------------------------------------------------------------------------------------
// Decoys.

/// Names of realistic non-secret settings with realistic values.
fn infra_decoy(rng: &mut StdRng) -> (String, String) {
    let hex = |rng: &mut StdRng, n: usize| expand(&format!("{{hex:{n}}}"), rng).unwrap();
    let uuid = |rng: &mut StdRng| expand("{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}", rng).unwrap();
    let sha_names = [
        "GITHUB_SHA",
        "CIRCLE_SHA1",
        "TRAVIS_COMMIT",
        "DRONE_COMMIT_SHA",
        "BUILDKITE_COMMIT",
        "CI_COMMIT_SHA",
        "GIT_COMMIT",
        "HEROKU_SLUG_COMMIT",
        "VERCEL_GIT_COMMIT_SHA",
        "SENTRY_RELEASE",
        "BITBUCKET_COMMIT",
        "APPVEYOR_REPO_COMMIT",
        "CODECOV_SHA",
        "JENKINS_GIT_COMMIT",
        "SOURCE_VERSION",
        "NETLIFY_COMMIT_REF",
        "COMMIT_REF",
        "REVISION",
    ];
    let uuid_names = [
        "AZURE_TENANT_ID",
        "AZURE_SUBSCRIPTION_ID",
        "ARM_CLIENT_ID",
        "AZURE_CLIENT_ID",
        "HEROKU_APP_ID",
        "HEROKU_DYNO_ID",
        "NETLIFY_SITE_ID",
        "SNYK_ORG_ID",
        "VAULT_ROLE_ID",
        "REQUEST_ID",
        "CORRELATION_ID",
        "TENANT_ID",
        "SENTRY_PROJECT_ID",
        "DATADOG_SERVICE_ID",
        "INSTALLATION_ID",
        "PAGERDUTY_SERVICE_ID",
        "CONSUL_NODE_ID",
        "NOMAD_ALLOC_ID",
        "TRACE_ID",
    ];
    match rng.gen_range(0..10) {
        0 | 1 => (sha_names.choose(rng).unwrap().to_string(), hex(rng, 40)),
        2 | 3 => (uuid_names.choose(rng).unwrap().to_string(), uuid(rng)),
        4 => (
            [
                "IMAGE_DIGEST",
                "BASE_IMAGE_SHA256",
                "CHECKSUM_SHA256",
                "ARTIFACT_SHA256",
                "LAYER_DIGEST",
            ]
            .choose(rng)
            .unwrap()
            .to_string(),
            format!("sha256:{}", hex(rng, 64)),
        ),
        5 => (
            ["DOCKER_IMAGE", "API_IMAGE", "WORKER_IMAGE"]
                .choose(rng)
                .unwrap()
                .to_string(),
            format!("ghcr.io/acme/api@sha256:{}", hex(rng, 64)),
        ),
        6 => (
            ["KMS_KEY_ARN", "SECRET_ARN", "DB_SECRET_ARN", "SIGNING_KEY_ARN"]
                .choose(rng)
                .unwrap()
                .to_string(),
            format!(
                "arn:aws:{}:eu-west-1:{}:{}",
                ["kms", "secretsmanager"].choose(rng).unwrap(),
                expand("{digits:12}", rng).unwrap(),
                uuid(rng)
            ),
        ),
        7 => {
            let (n, v) = [
                (
                    "GOOGLE_CLIENT_ID",
                    expand("{digits:12}-{lower:32}.apps.googleusercontent.com", rng).unwrap(),
                ),
                ("AWS_ACCOUNT_ID", expand("{digits:12}", rng).unwrap()),
                ("SLACK_CHANNEL_ID", expand("C{upper:10}", rng).unwrap()),
                ("DISCORD_GUILD_ID", expand("{digits:18}", rng).unwrap()),
                ("TELEGRAM_CHAT_ID", expand("-100{digits:10}", rng).unwrap()),
                ("ALGOLIA_APP_ID", expand("{upper:10}", rng).unwrap()),
                ("STRIPE_ACCOUNT_ID", expand("acct_{alnum:16}", rng).unwrap()),
                ("TWILIO_ACCOUNT_SID", expand("AC{hex:32}", rng).unwrap()),
                ("AZURE_STORAGE_ACCOUNT", expand("{lower:12}", rng).unwrap()),
                ("OKTA_CLIENT_ID", expand("0oa{alnum:17}", rng).unwrap()),
                ("AUTH0_CLIENT_ID", expand("{alnum:32}", rng).unwrap()),
                ("FIREBASE_APP_ID", expand("1:{digits:12}:web:{hex:22}", rng).unwrap()),
                ("DD_SITE", "datadoghq.eu".to_owned()),
                ("SENTRY_ORG", "acme".to_owned()),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            (n.to_owned(), v)
        }
        8 => (
            [
                "PASSWORD_MIN_LENGTH",
                "TOKEN_TTL",
                "SESSION_TIMEOUT",
                "API_KEY_HEADER",
                "JWT_ALGORITHM",
                "SECRET_NAME",
                "TOKEN_URL",
                "VAULT_ADDR",
                "VAULT_NAMESPACE",
                "PASSWORD_RESET_URL",
                "SECRET_KEY_FILE",
                "API_TOKEN_PATH",
            ]
            .choose(rng)
            .unwrap()
            .to_string(),
            [
                "12",
                "3600",
                "X-Api-Key",
                "RS256",
                "prod/orders/db",
                "https://auth.acme.internal/oauth2/token",
                "https://vault.acme.internal:8200",
                "admin/team-a",
                "https://acme.com/account/password/reset",
                "/run/secrets/app_secret_key",
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            ]
            .choose(rng)
            .unwrap()
            .to_string(),
        ),
        _ => (
            ["BUILD_HASH", "CONTENT_HASH", "ETAG", "CACHE_VERSION", "ASSET_VERSION"]
                .choose(rng)
                .unwrap()
                .to_string(),
            {
                let len = [32, 40, 64].choose(rng).copied().unwrap();
                hex(rng, len)
            },
        ),
    }
}

/// A placeholder for `name`: what templates and docs put where the secret goes.
fn placeholder(name: &str, value: &str, rng: &mut StdRng) -> String {
    let lower = name.to_ascii_lowercase();
    match rng.gen_range(0..14) {
        0 => format!("${{{name}}}"),
        1 => format!("${{{{ secrets.{name} }}}}"),
        2 => format!("<your-{}>", lower.replace('_', "-")),
        3 => "changeme".into(),
        4 => "x".repeat(value.len().clamp(8, 40)),
        5 => "X".repeat(value.len().clamp(8, 40)),
        6 => format!("your_{lower}_here"),
        7 => "REPLACE_ME".into(),
        8 => "********".into(),
        9 => format!("{{{{ .Values.{} }}}}", camel(name)),
        10 => format!("$({name})"),
        11 => format!("<{name}>"),
        12 => masked(value),
        _ => format!("%({lower})s"),
    }
}

/// A provider token with its random part replaced by x's: `sk_live_xxxxxxxx...`.
fn masked(value: &str) -> String {
    let head = value
        .char_indices()
        .take(14)
        .filter(|(_, c)| "_-.".contains(*c))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or(4.min(value.len()));
    let upper = !value.chars().any(|c| c.is_ascii_lowercase());
    let x = if upper { 'X' } else { 'x' };
    let tail: String = value[head..]
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { x } else { c })
        .collect();
    format!("{}{tail}", &value[..head])
}

/// A checksum-invalid GitHub or npm token (the last character of a valid one changed).
fn bad_checksum_token(rng: &mut StdRng) -> String {
    let prefix = ["ghp", "gho", "ghu", "ghs", "ghr", "npm"].choose(rng).unwrap();
    let mut token = expand(&format!("{{github:{prefix}}}"), rng).unwrap();
    let last = token.pop().unwrap();
    token.push(if last == 'a' { 'b' } else { 'a' });
    token
}

/// AWS's documented example credentials (assembled so no key-shaped literal is in the file).
fn aws_example(rng: &mut StdRng) -> (String, String) {
    let id_prefix = ["AK", "IA"].concat();
    match rng.gen_range(0..4) {
        0 => ("AWS_ACCESS_KEY_ID".into(), format!("{id_prefix}IOSFODNN7EXAMPLE")),
        1 => ("aws_access_key_id".into(), format!("{id_prefix}I44QH8DHBEXAMPLE")),
        2 => (
            "AWS_SECRET_ACCESS_KEY".into(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        ),
        _ => (
            "aws_secret_access_key".into(),
            "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY".into(),
        ),
    }
}

/// Code that reads a secret instead of holding it.
fn reference(name: &str, rng: &mut StdRng) -> Shape {
    let lower = name.to_ascii_lowercase();
    match rng.gen_range(0..4) {
        0 => Shape::Code(Lang::Python, format!("{name} = os.environ[\"{name}\"]")),
        1 => Shape::Code(Lang::Python, format!("{lower} = os.getenv(\"{name}\")")),
        2 => Shape::Code(Lang::Js, format!("const {} = process.env.{name};", camel(name))),
        _ => Shape::Code(Lang::Php, format!("$config['{lower}'] = getenv('{name}');")),
    }
}

fn cert_pem(rng: &mut StdRng) -> String {
    let label = [
        "CERTIFICATE",
        "CERTIFICATE",
        "PUBLIC KEY",
        "RSA PUBLIC KEY",
        "CERTIFICATE REQUEST",
        "PGP PUBLIC KEY BLOCK",
        "X509 CRL",
    ]
    .choose(rng)
    .unwrap();
    expand(&format!("{{pem:{label}}}"), rng).unwrap()
}

fn ssh_public_key(rng: &mut StdRng) -> String {
    match rng.gen_range(0..3) {
        0 => expand(
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ{b64:500} deploy@build-{lower:4}",
            rng,
        )
        .unwrap(),
        1 => expand("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{b64:43} ci@{lower:6}", rng).unwrap(),
        _ => expand(
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB{b64:86}= ops@{lower:5}",
            rng,
        )
        .unwrap(),
    }
}

/// A decoy shape: something a careless scanner reports.
fn decoy_shape(names: &[(String, String)], rng: &mut StdRng) -> Shape {
    let (name, value) = names.choose(rng).unwrap().clone();
    match rng.gen_range(0..20) {
        0..=5 => Shape::Assign {
            value: placeholder(&name, &value, rng),
            name,
            natural: Kind::Env,
        },
        6..=10 => {
            let (name, value) = infra_decoy(rng);
            Shape::Assign { name, value, natural: Kind::Env }
        }
        11 => {
            let (name, value) = aws_example(rng);
            Shape::Assign { name, value, natural: Kind::Env }
        }
        12 => Shape::Assign {
            name: ["GITHUB_TOKEN", "GH_TOKEN", "NPM_TOKEN", "TOKEN", "github_token"].choose(rng).unwrap().to_string(),
            value: bad_checksum_token(rng),
            natural: Kind::Env,
        },
        13 | 14 => reference(&name, rng),
        15 => Shape::Multi {
            text: cert_pem(rng),
            crlf: false,
        },
        16 => Shape::Other(ssh_public_key(rng)),
        17 => Shape::Json(
            expand(
                r#"{{"sha": "{hex:40}", "node_id": "C_kwDO{b64url:20}", "tree": {{"sha": "{hex:40}"}}, "request_id": "{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}"}}"#,
                rng,
            )
            .unwrap(),
        ),
        18 => Shape::Json(
            expand(
                r#"{{"version": "1.{digits:1}.{digits:1}", "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", "integrity": "sha512-{b64:86}=="}}"#,
                rng,
            )
            .unwrap(),
        ),
        _ => Shape::Other(
            expand(
                ["commit {hex:40}", "Merge: {hex:7} {hex:7}", "image: ghcr.io/acme/worker@sha256:{hex:64}", "<script src=\"https://cdn.jsdelivr.net/npm/lib@1/x.min.js\" integrity=\"sha384-{b64:64}\" crossorigin=\"anonymous\"></script>"]
                    .choose(rng)
                    .unwrap(),
                rng,
            )
            .unwrap(),
        ),
    }
}

/// Whole decoy files: lockfiles, keys and certificates, git logs, `.env.example`...
fn decoy_files(names: &[(String, String)], rng: &mut StdRng) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for i in 0..6 {
        let mut lock = String::from("{\n  \"name\": \"web\",\n  \"lockfileVersion\": 3,\n  \"packages\": {\n");
        let mut yarn =
            String::from("# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n# yarn lockfile v1\n\n");
        let mut pnpm = String::from("lockfileVersion: '9.0'\n\npackages:\n");
        let mut cargo = String::from("version = 3\n\n");
        let mut gosum = String::new();
        let mut poetry = String::new();
        let mut reqs = String::new();
        for p in 0..40 {
            let pkg = expand("{lower:8}", rng).unwrap();
            let integrity = expand(
                if p % 5 == 0 {
                    "sha1-{b64:27}="
                } else {
                    "sha512-{b64:86}=="
                },
                rng,
            )
            .unwrap();
            let _ = write!(
                lock,
                "    \"node_modules/{pkg}\": {{\n      \"version\": \"1.{p}.0\",\n      \"resolved\": \"https://registry.npmjs.org/{pkg}/-/{pkg}-1.{p}.0.tgz\",\n      \"integrity\": \"{integrity}\"\n    }},\n"
            );
            let _ = write!(
                yarn,
                "{pkg}@^1.{p}.0:\n  version \"1.{p}.0\"\n  resolved \"https://registry.yarnpkg.com/{pkg}/-/{pkg}-1.{p}.0.tgz#{}\"\n  integrity {integrity}\n\n",
                expand("{hex:40}", rng).unwrap()
            );
            let _ = write!(pnpm, "  {pkg}@1.{p}.0:\n    resolution: {{integrity: {integrity}}}\n\n");
            let _ = write!(
                cargo,
                "[[package]]\nname = \"{pkg}\"\nversion = \"0.{p}.1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n\n",
                expand("{hex:64}", rng).unwrap()
            );
            let _ = writeln!(
                gosum,
                "github.com/acme/{pkg} v1.{p}.0 h1:{}=",
                expand("{b64:43}", rng).unwrap()
            );
            let _ = writeln!(
                gosum,
                "github.com/acme/{pkg} v1.{p}.0/go.mod h1:{}=",
                expand("{b64:43}", rng).unwrap()
            );
            let _ = writeln!(
                poetry,
                "[[package]]\nname = \"{pkg}\"\nversion = \"2.{p}.0\"\nfiles = [\n    {{file = \"{pkg}-2.{p}.0.tar.gz\", hash = \"sha256:{}\"}},\n]\n",
                expand("{hex:64}", rng).unwrap()
            );
            let _ = writeln!(
                reqs,
                "{pkg}==2.{p}.0 \\\n    --hash=sha256:{}",
                expand("{hex:64}", rng).unwrap()
            );
        }
        lock.push_str("    \"\": {\"name\": \"web\"}\n  }\n}\n");
        files.push((format!("lock{i}/package-lock.json"), lock));
        files.push((format!("lock{i}/yarn.lock"), yarn));
        files.push((format!("lock{i}/pnpm-lock.yaml"), pnpm));
        files.push((format!("lock{i}/Cargo.lock"), cargo));
        files.push((format!("lock{i}/go.sum"), gosum));
        files.push((format!("lock{i}/poetry.lock"), poetry));
        files.push((format!("lock{i}/requirements.txt"), reqs));
        files.push((
            format!("lock{i}/.terraform.lock.hcl"),
            expand(
                "provider \"registry.terraform.io/hashicorp/aws\" {{\n  version     = \"5.31.0\"\n  constraints = \"~> 5.0\"\n  hashes = [\n    \"h1:{b64:43}=\",\n    \"zh:{hex:64}\",\n    \"zh:{hex:64}\",\n  ]\n}}\n",
                rng,
            )
            .unwrap(),
        ));

        // Keys and certificates that are public by design.
        let mut authorized = String::new();
        let mut known = String::new();
        for _ in 0..6 {
            authorized.push_str(&ssh_public_key(rng));
            authorized.push('\n');
            let _ = writeln!(
                known,
                "git.{}.com {}",
                expand("{lower:6}", rng).unwrap(),
                ssh_public_key(rng)
            );
            let _ = writeln!(
                known,
                "|1|{}=|{}= {}",
                expand("{b64:27}", rng).unwrap(),
                expand("{b64:27}", rng).unwrap(),
                ssh_public_key(rng)
            );
        }
        files.push((format!("home{i}/.ssh/authorized_keys"), authorized));
        files.push((format!("home{i}/.ssh/known_hosts"), known));
        files.push((format!("home{i}/.ssh/id_ed25519.pub"), ssh_public_key(rng) + "\n"));
        files.push((
            format!("certs{i}/ca.crt"),
            format!("{}\n", expand("{pem:CERTIFICATE}", rng).unwrap()),
        ));
        files.push((
            format!("certs{i}/chain.pem"),
            format!(
                "{}\n{}\n",
                expand("{pem:CERTIFICATE}", rng).unwrap(),
                expand("{pem:CERTIFICATE}", rng).unwrap()
            ),
        ));
        files.push((format!("certs{i}/public.pem"), format!("{}\n", cert_pem(rng))));
        files.push((
            format!("certs{i}/bundle.json"),
            format!(
                "{{\n  \"ca_bundle\": {},\n  \"public_key\": {}\n}}\n",
                dq(&format!("{}\n", expand("{pem:CERTIFICATE}", rng).unwrap())),
                dq(&format!("{}\n", expand("{pem:PUBLIC KEY}", rng).unwrap()))
            ),
        ));
        files.push((
            format!("k8s{i}/kubeconfig"),
            expand(
                "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {b64:800}\n    server: https://10.0.0.1:6443\n  name: prod\ncontexts:\n- context:\n    cluster: prod\n    user: admin\n  name: prod\ncurrent-context: prod\nusers:\n- name: admin\n  user:\n    client-certificate-data: {b64:600}\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: [\"eks\", \"get-token\", \"--cluster-name\", \"prod\"]\n",
                rng,
            )
            .unwrap(),
        ));
        files.push((
            format!("k8s{i}/tls-configmap.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: trust\ndata:\n  ca.crt: |\n{}\n",
                expand("{pem:CERTIFICATE}", rng)
                    .unwrap()
                    .lines()
                    .map(|l| format!("    {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        ));
        files.push((
            format!("k8s{i}/deployment.yaml"),
            expand(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  annotations:\n    checksum/config: {hex:64}\nspec:\n  template:\n    metadata:\n      labels:\n        pod-template-hash: {lower:10}\n    spec:\n      containers:\n      - name: api\n        image: ghcr.io/acme/api@sha256:{hex:64}\n        env:\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db-credentials\n              key: password\n        - name: API_TOKEN\n          valueFrom:\n            secretKeyRef: {{name: api, key: token}}\n",
                rng,
            )
            .unwrap(),
        ));
        files.push((
            format!("jwks{i}/jwks.json"),
            expand(
                "{{\"keys\": [{{\"kty\": \"RSA\", \"use\": \"sig\", \"kid\": \"{hex:16}\", \"alg\": \"RS256\", \"n\": \"{b64url:342}\", \"e\": \"AQAB\"}}]}}\n",
                rng,
            )
            .unwrap(),
        ));

        // History, events, docs.
        let mut log = String::new();
        for _ in 0..12 {
            let _ = write!(
                log,
                "commit {}\nAuthor: Dev <dev@acme.com>\nDate:   Mon Jan 8 10:00:00 2024 +0000\n\n    Bump dependencies ({})\n\n",
                expand("{hex:40}", rng).unwrap(),
                expand("{hex:7}", rng).unwrap()
            );
        }
        files.push((format!("history{i}/git-log.txt"), log));
        let mut events = String::from("[\n");
        for e in 0..15 {
            let _ = writeln!(
                events,
                "  {{\"id\": \"{}\", \"trace_id\": \"{}\", \"span_id\": \"{}\", \"commit\": \"{}\", \"session_id\": \"{}\", \"etag\": \"\\\"{}\\\"\"}}{}",
                expand("{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}", rng).unwrap(),
                expand("{hex:32}", rng).unwrap(),
                expand("{hex:16}", rng).unwrap(),
                expand("{hex:40}", rng).unwrap(),
                expand("{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}", rng).unwrap(),
                expand("{hex:32}", rng).unwrap(),
                if e == 14 { "" } else { "," }
            );
        }
        events.push_str("]\n");
        files.push((format!("events{i}/events.json"), events));
        let mut example_env = String::from("# Copy to .env and fill in\n");
        for _ in 0..25 {
            let (name, value) = names.choose(rng).unwrap();
            let _ = writeln!(example_env, "{name}={}", placeholder(name, value, rng));
        }
        files.push((format!("app{i}/.env.example"), example_env));
        let (a, b) = (aws_example(rng), aws_example(rng));
        files.push((
            format!("docs{i}/aws.md"),
            format!(
                "# Configure the CLI\n\n```ini\n[default]\n{} = {}\n{} = {}\nregion = us-east-1\n```\n\nThe keys above are AWS's documented examples.\n",
                a.0.to_ascii_lowercase(),
                a.1,
                b.0.to_ascii_lowercase(),
                b.1
            ),
        ));
        let mut fixtures =
            String::from("\"\"\"Tokens with a wrong checksum: must never be reported.\"\"\"\n\nINVALID = [\n");
        for _ in 0..8 {
            let _ = writeln!(fixtures, "    \"{}\",", bad_checksum_token(rng));
        }
        fixtures.push_str("]\n");
        let _ = writeln!(fixtures, "GITHUB_TOKEN = \"{}\"", bad_checksum_token(rng));
        files.push((format!("tests{i}/fixtures/tokens.py"), fixtures));
        files.push((
            format!("web{i}/index.html"),
            expand(
                "<!doctype html>\n<html>\n<head>\n<link rel=\"stylesheet\" href=\"https://cdn.jsdelivr.net/npm/bootstrap@5.3.2/dist/css/bootstrap.min.css\" integrity=\"sha384-{b64:64}\" crossorigin=\"anonymous\">\n<meta name=\"csrf-token\" content=\"{{{{ csrf_token() }}}}\">\n</head>\n<body><img src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{b64:200}\"></body>\n</html>\n",
                rng,
            )
            .unwrap(),
        ));
    }
    files
}

// ------------------------------------------------------------------------------------------
// Files: fragments framed as a whole file of a kind, with filler and decoys between them.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16LeBom,
    Utf16Le,
}

struct Frame {
    header: Vec<String>,
    footer: Vec<String>,
    filler: Vec<&'static str>,
    path: String,
}

fn frame(kind: Kind, n: usize) -> Frame {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (header, footer, filler, path): (Vec<String>, Vec<String>, Vec<&str>, String) = match kind {
        Kind::Env => (
            v(&["# application settings"]),
            vec![],
            vec![
                "PORT=8080",
                "NODE_ENV=production",
                "LOG_LEVEL=info",
                "# database",
                "DEBUG=false",
                "TZ=UTC",
            ],
            format!(
                "svc{n}/{}",
                [".env", ".env.production", ".env.local", "config/.env.staging"][n % 4]
            ),
        ),
        Kind::Shell => (
            v(&["#!/usr/bin/env bash", "set -euo pipefail", ""]),
            v(&["", "make deploy"]),
            vec!["echo \"deploying $APP\"", "cd \"$(dirname \"$0\")/..\"", "# configure"],
            format!("scripts/deploy_{n}.sh"),
        ),
        Kind::Yaml => (
            v(&["app:", "  name: orders", "  replicas: 3", "  settings:"]),
            v(&["  region: eu-west-1"]),
            vec!["log_level: info", "timeout: 30s", "enabled: true"],
            format!("config/app_{n}.yaml"),
        ),
        Kind::Compose => (
            v(&[
                "services:",
                "  api:",
                "    image: ghcr.io/acme/api:1.4.2",
                "    ports:",
                "      - \"8080:8080\"",
                "    environment:",
            ]),
            v(&["  db:", "    image: postgres:16"]),
            vec!["- TZ=UTC", "- LOG_LEVEL=info"],
            format!("compose_{n}/docker-compose.yml"),
        ),
        Kind::GhEnv => (
            v(&[
                "name: deploy",
                "on:",
                "  push:",
                "    branches: [main]",
                "jobs:",
                "  deploy:",
                "    runs-on: ubuntu-latest",
                "    env:",
            ]),
            v(&[
                "    steps:",
                "      - uses: actions/checkout@v4",
                "      - run: make deploy",
            ]),
            vec!["AWS_REGION: eu-west-1", "NODE_VERSION: \"20\""],
            format!(".github/workflows/deploy_{n}.yml"),
        ),
        Kind::GhRun => (
            v(&[
                "name: release",
                "on: workflow_dispatch",
                "jobs:",
                "  release:",
                "    runs-on: ubuntu-latest",
                "    steps:",
                "      - uses: actions/checkout@v4",
            ]),
            vec![],
            vec!["- run: make test"],
            format!(".github/workflows/release_{n}.yml"),
        ),
        Kind::Json => (
            v(&["{", "  \"name\": \"orders\",", "  \"settings\": {"]),
            v(&["    \"version\": 3", "  }", "}"]),
            vec!["\"timeout\": 30", "\"region\": \"eu-west-1\"", "\"retries\": 5"],
            [
                "config/settings_{n}.json",
                "appsettings.{n}.json",
                ".vscode/settings_{n}.json",
            ][n % 3]
                .replace("{n}", &n.to_string()),
        ),
        Kind::Python => (
            v(&["import os", "import subprocess", ""]),
            v(&["", "TIMEOUT = 30"]),
            vec!["DEBUG = False", "# settings", "ALLOWED_HOSTS = [\"*\"]"],
            ["app/settings_{n}.py", "scripts/job_{n}.py", "tests/conftest_{n}.py"][n % 3]
                .replace("{n}", &n.to_string()),
        ),
        Kind::Js => (
            v(&["'use strict';", ""]),
            v(&["", "module.exports.timeout = 30;"]),
            vec!["const PORT = 3000;", "// config"],
            format!("src/config_{n}.js"),
        ),
        Kind::Ts => (
            v(&["import type { Config } from './types';", ""]),
            v(&["", "export default {} as Config;"]),
            vec!["export const PORT = 3000;", "// config"],
            format!("src/env_{n}.ts"),
        ),
        Kind::Go => (
            v(&["package config", "", "import \"os\"", "", "func init() {"]),
            v(&["}"]),
            vec!["_ = os.Getenv(\"HOME\")", "// settings"],
            format!("internal/config{n}/config.go"),
        ),
        Kind::Java => (
            v(&["package com.acme.config;", "", "public final class Settings {"]),
            v(&["}"]),
            vec!["private static final int TIMEOUT = 30;", "// settings"],
            format!("src/main/java/com/acme/config{n}/Settings.java"),
        ),
        Kind::Ruby => (
            v(&["# frozen_string_literal: true", "require 'json'", ""]),
            vec![],
            vec!["TIMEOUT = 30", "Rails.logger.level = :info"],
            format!("config/initializers/keys_{n}.rb"),
        ),
        Kind::Php => (
            v(&["<?php", ""]),
            vec![],
            vec!["$timeout = 30;", "// settings"],
            format!("config/app_{n}.php"),
        ),
        Kind::Terraform => (
            v(&["terraform {", "  required_version = \">= 1.5\"", "}", "", "locals {"]),
            v(&["}", "", "resource \"null_resource\" \"noop\" {}"]),
            vec!["region = \"eu-west-1\"", "# settings"],
            format!("infra/main_{n}.tf"),
        ),
        Kind::Tfvars => (
            vec![],
            vec![],
            vec!["region = \"eu-west-1\"", "instance_type = \"t3.small\""],
            format!("infra/prod_{n}.tfvars"),
        ),
        Kind::Dockerfile => (
            v(&["FROM python:3.12-slim", "WORKDIR /app", "COPY . ."]),
            v(&["EXPOSE 8080", "CMD [\"python\", \"app.py\"]"]),
            vec![
                "RUN pip install --no-cache-dir -r requirements.txt",
                "ENV PYTHONUNBUFFERED=1",
            ],
            format!("docker/svc{n}/Dockerfile"),
        ),
        Kind::Properties => (
            v(&["# application properties"]),
            vec![],
            vec![
                "server.port=8080",
                "spring.application.name=orders",
                "logging.level.root=INFO",
            ],
            format!("src/main/resources/application_{n}.properties"),
        ),
        Kind::Ini => (
            v(&["[default]"]),
            vec![],
            vec!["region = eu-west-1", "output = json"],
            format!("conf/service_{n}.ini"),
        ),
        Kind::Ps1 => (
            v(&["# setup script", "$ErrorActionPreference = 'Stop'"]),
            vec![],
            vec!["Write-Host 'configuring'", "Set-Location $PSScriptRoot"],
            format!("scripts/setup_{n}.ps1"),
        ),
        Kind::Bat => (
            v(&["@echo off", "setlocal"]),
            v(&["endlocal"]),
            vec!["echo configuring", "cd /d %~dp0"],
            format!("scripts/env_{n}.bat"),
        ),
        Kind::Utf16Txt => (
            vec![],
            vec![],
            vec!["# exported settings", "REGION=eu-west-1"],
            format!("export/settings_{n}.txt"),
        ),
        Kind::Txt => (
            v(&["Notes from the ops channel", ""]),
            vec![],
            vec!["restarted the worker pool at 14:02", "see runbook section 4"],
            format!("notes/ops_{n}.txt"),
        ),
        Kind::K8sData => (
            vec![
                "apiVersion: v1".into(),
                "kind: Secret".into(),
                "metadata:".into(),
                format!("  name: app-{n}"),
                "  namespace: prod".into(),
                "type: Opaque".into(),
                "data:".into(),
            ],
            v(&["  username: YWRtaW4=", "  port: NTQzMg=="]),
            vec![],
            format!("k8s/secret_{n}.yaml"),
        ),
        Kind::K8sStringData => (
            vec![
                "apiVersion: v1".into(),
                "kind: Secret".into(),
                "metadata:".into(),
                format!("  name: cfg-{n}"),
                "stringData:".into(),
            ],
            vec![],
            vec![],
            format!("k8s/stringdata_{n}.yaml"),
        ),
        Kind::Markdown => (
            v(&["# Setup", "", "Run the following:", ""]),
            v(&["", "See the wiki for details."]),
            vec!["Then restart the service.", ""],
            format!("docs/setup_{n}.md"),
        ),
        Kind::YamlBlock => (
            v(&["# chart values", "tls:"]),
            vec![],
            vec!["enabled: true"],
            format!("deploy/values_{n}.yaml"),
        ),
        Kind::YamlNext | Kind::YamlWrapped => (
            v(&["# service settings", "service:"]),
            vec![],
            vec!["port: 8080", "replicas: 2"],
            format!("config/service_{n}.yaml"),
        ),
        Kind::K8sEnv => (
            vec![
                "apiVersion: apps/v1".into(),
                "kind: Deployment".into(),
                "metadata:".into(),
                format!("  name: api-{n}"),
                "spec:".into(),
                "  template:".into(),
                "    spec:".into(),
                "      containers:".into(),
                "      - name: api".into(),
                "        image: ghcr.io/acme/api:1.4".into(),
                "        env:".into(),
            ],
            vec![],
            vec!["- {name: LOG_LEVEL, value: info}"],
            format!("k8s/deployment_{n}.yaml"),
        ),
        Kind::XmlSettings => (
            v(&[
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
                "<configuration>",
                "  <appSettings>",
            ]),
            v(&["  </appSettings>", "</configuration>"]),
            vec!["<add key=\"Environment\" value=\"Production\" />"],
            format!("web_{n}/Web.config"),
        ),
        Kind::CDefine => (
            v(&["#pragma once", "", "/* build configuration */"]),
            vec![],
            vec!["#define APP_VERSION \"1.4.2\"", "#define MAX_RETRIES 3"],
            format!("src/config_{n}.h"),
        ),
        Kind::IniSection => (
            v(&["; service configuration"]),
            vec![],
            vec!["timeout = 30"],
            format!("etc/service_{n}.ini"),
        ),
        Kind::Notebook | Kind::MinJs | Kind::Raw => (vec![], vec![], vec![], String::new()),
    };
    Frame {
        header,
        footer,
        filler,
        path: format!("{}/{path}", kind.name()),
    }
}

struct Corpus {
    files: Vec<(String, Vec<u8>)>,
    plants: Vec<Plant>,
}

/// A file being written: lines, and the fragments' line ranges.
#[derive(Default)]
struct Doc {
    lines: Vec<String>,
    placed: Vec<(usize, usize, usize)>,
}

impl Doc {
    fn push(&mut self, s: &str) {
        self.lines.extend(s.split('\n').map(str::to_owned));
    }

    fn place(&mut self, id: usize, lines: &[String]) {
        let first = self.lines.len() + 1;
        for l in lines {
            self.push(l);
        }
        self.placed.push((id, first, self.lines.len()));
    }
}

fn encode(text: &str, crlf: bool, encoding: Encoding) -> Vec<u8> {
    let text = if crlf {
        text.replace('\n', "\r\n")
    } else {
        text.to_owned()
    };
    match encoding {
        Encoding::Utf8 => text.into_bytes(),
        Encoding::Utf16LeBom | Encoding::Utf16Le => {
            let mut out = if encoding == Encoding::Utf16LeBom {
                vec![0xff, 0xfe]
            } else {
                vec![]
            };
            out.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
            out
        }
    }
}

/// Makes the lines of a decoy for a file of a kind (`None`: nothing fits).
type Decoys<'a> = dyn FnMut(Kind, usize, &mut StdRng) -> Option<Vec<String>> + 'a;

/// Builds files of `kind` from `frags` (indices into `all`), a few fragments per file.
fn build_kind(
    kind: Kind,
    mut ids: Vec<usize>,
    all: &[Fragment],
    decoys: &mut Decoys<'_>,
    rng: &mut StdRng,
    corpus: &mut Corpus,
    counter: &mut usize,
) {
    ids.shuffle(rng);
    let per_file = match kind {
        Kind::K8sData | Kind::Raw => 1,
        Kind::MinJs => 12,
        _ => 5,
    };
    for chunk in ids.chunks(per_file) {
        *counter += 1;
        let n = *counter;
        let mut crlf = match kind {
            Kind::Ps1 | Kind::Bat => true,
            Kind::Env | Kind::Properties | Kind::Ini | Kind::Utf16Txt => rng.gen_bool(0.35),
            Kind::Yaml | Kind::Json | Kind::Txt | Kind::Markdown => rng.gen_bool(0.15),
            _ => false,
        };
        let mut encoding = match kind {
            Kind::Ps1 => Encoding::Utf16LeBom,
            Kind::Utf16Txt => {
                if rng.gen_bool(0.5) {
                    Encoding::Utf16Le
                } else {
                    Encoding::Utf16LeBom
                }
            }
            Kind::Env | Kind::Ini | Kind::Json => {
                if rng.gen_bool(0.08) {
                    Encoding::Utf16LeBom
                } else {
                    Encoding::Utf8
                }
            }
            _ => Encoding::Utf8,
        };
        let mut doc = Doc::default();
        let path;
        match kind {
            Kind::Raw => {
                let frag = &all[chunk[0]];
                path = format!(
                    "files/{}",
                    frag.natural_name.clone().unwrap_or_else(|| natural_name(&frag.text, n))
                );
                doc.place(chunk[0], &frag.lines);
                crlf = frag.crlf || rng.gen_bool(0.12);
                if rng.gen_bool(0.08) {
                    encoding = Encoding::Utf16LeBom;
                }
            }
            Kind::Notebook => {
                path = format!("notebooks/analysis_{n}.ipynb");
                doc.push("{\n \"cells\": [");
                let mut cells: Vec<(Option<usize>, Vec<String>)> =
                    chunk.iter().map(|id| (Some(*id), all[*id].lines.clone())).collect();
                if let Some(lines) = decoys(kind, n, rng) {
                    cells.insert(rng.gen_range(0..=cells.len()), (None, lines));
                }
                cells.insert(0, (None, vec!["import os".into(), "import pandas as pd".into()]));
                let count = cells.len();
                for (c, (id, lines)) in cells.into_iter().enumerate() {
                    doc.push("  {\n   \"cell_type\": \"code\",\n   \"execution_count\": null,\n   \"metadata\": {},\n   \"outputs\": [],\n   \"source\": [");
                    let mut src = Vec::new();
                    for (i, l) in lines.iter().enumerate() {
                        let end = if i + 1 == lines.len() { "" } else { "\n" };
                        let comma = if i + 1 == lines.len() { "" } else { "," };
                        src.push(format!("    {}{comma}", dq(&format!("{l}{end}"))));
                    }
                    match id {
                        Some(id) => doc.place(id, &src),
                        None => {
                            for s in &src {
                                doc.push(s);
                            }
                        }
                    }
                    doc.push(&format!("   ]\n  }}{}", if c + 1 == count { "" } else { "," }));
                }
                doc.push(" ],\n \"metadata\": {\"kernelspec\": {\"display_name\": \"Python 3\", \"language\": \"python\", \"name\": \"python3\"}},\n \"nbformat\": 4,\n \"nbformat_minor\": 5\n}");
            }
            Kind::MinJs => {
                path = format!("dist/bundle_{n}.min.js");
                let mut parts = vec![expand("!function(e){{\"use strict\";var t=\"{hex:8}\",n=function(e){{return e&&e.__esModule?e:{{default:e}}}}", rng).unwrap()];
                let mut ids_in_line = Vec::new();
                for id in chunk {
                    parts.push(all[*id].lines.join(""));
                    ids_in_line.push(*id);
                    if let Some(d) = decoys(kind, n, rng) {
                        parts.push(d.join(""));
                    }
                }
                parts.push("e.exports=n}(module);".into());
                doc.push(&parts.join(";"));
                for id in ids_in_line {
                    doc.placed.push((id, 1, 1));
                }
                doc.push(
                    &expand(
                        "//# sourceMappingURL=data:application/json;charset=utf-8;base64,{b64:400}",
                        rng,
                    )
                    .unwrap(),
                );
            }
            _ => {
                let fr = frame(kind, n);
                path = fr.path.clone();
                let ind = kind.indent();
                let comma = kind == Kind::Json;
                for h in &fr.header {
                    doc.push(h);
                }
                for id in chunk {
                    if !fr.filler.is_empty() && rng.gen_bool(0.5) {
                        let f = fr.filler.choose(rng).unwrap();
                        doc.push(&format!("{ind}{f}{}", if comma { "," } else { "" }));
                    }
                    if !matches!(kind, Kind::K8sData | Kind::K8sStringData) && rng.gen_bool(0.45) {
                        if let Some(mut lines) = decoys(kind, n, rng) {
                            if comma {
                                let last = lines.len() - 1;
                                lines[last].push(',');
                            }
                            for l in &lines {
                                doc.push(l);
                            }
                        }
                    }
                    let mut lines = all[*id].lines.clone();
                    if comma {
                        let last = lines.len() - 1;
                        lines[last].push(',');
                    }
                    doc.place(*id, &lines);
                }
                for f in &fr.footer {
                    doc.push(f);
                }
            }
        }
        let mut text = doc.lines.join("\n");
        text.push('\n');
        let suffix = match (crlf, encoding) {
            (_, Encoding::Utf16LeBom) => "+utf16le-bom",
            (_, Encoding::Utf16Le) => "+utf16le",
            (true, _) => "+crlf",
            _ => "",
        };
        let file = format!("corpus/{path}");
        for (id, first, last) in doc.placed {
            let frag = &all[id];
            if frag.labels.is_empty() {
                continue;
            }
            corpus.plants.push(Plant {
                file: file.clone(),
                first,
                last,
                labels: frag.labels.clone(),
                format: format!("{}{suffix}", kind.name()),
                text: frag.text.clone(),
            });
        }
        corpus.files.push((path, encode(&text, crlf, encoding)));
    }
}

/// What the engine finds in `text` on its own: (family, rule id, secret) of each finding.
fn labels_of(engine: &Engine, text: &str) -> Vec<(String, String, String)> {
    engine
        .scan(text.as_bytes(), None)
        .into_iter()
        .map(|m| {
            let rule = &engine.rules()[m.rule];
            (
                rule.family.clone(),
                rule.id.clone(),
                String::from_utf8_lossy(&text.as_bytes()[m.secret]).into_owned(),
            )
        })
        .collect()
}

/// For each rule reporting a secret in `text`, the families of the other non-generic rules that
/// match the same secret (the engine keeps one finding per secret): a URL with credentials is a
/// basic-auth URL and a `.git-credentials` line.
fn alternatives(engine: &Engine, text: &str) -> HashMap<String, Vec<String>> {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let mut by_span: HashMap<(usize, usize), Vec<String>> = HashMap::new();
    for rule in engine.rules() {
        if rule.family == "generic" || !rule.keywords.iter().any(|k| lower.contains(k.as_str())) {
            continue;
        }
        for caps in rule.regex.get().captures_iter(bytes) {
            if let Some(secret) = caps
                .get(rule.secret_group())
                .filter(|s| !s.is_empty() && rule.accepts(s.as_bytes()))
            {
                by_span
                    .entry((secret.start(), secret.end()))
                    .or_default()
                    .push(rule.family.clone());
            }
        }
    }
    let mut out = HashMap::new();
    for m in engine.scan(bytes, None) {
        let rule = &engine.rules()[m.rule];
        let mut also = by_span.remove(&(m.secret.start, m.secret.end)).unwrap_or_default();
        also.retain(|f| *f != rule.family);
        also.dedup();
        out.insert(rule.id.clone(), also);
    }
    out
}

/// Rules for one kind of file (`.npmrc`, `.htpasswd`, a Kubernetes manifest...): their examples
/// are whole files (or lines of one) and are only ever embedded whole.
fn file_bound(rule: &rules::Rule) -> bool {
    rule.family == "auth-file"
        || rule.family == "kubernetes"
        || [
            "gradle-properties-credential",
            "maven-settings-password",
            "nuget-config-password",
        ]
        .contains(&rule.id.as_str())
}

fn build(seed: u64) -> (Corpus, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let engine = Engine::new(rules::builtin());
    let mut problems = Vec::new();
    let mut examples_per_family: HashMap<String, usize> = HashMap::new();
    for rule in engine.rules() {
        *examples_per_family.entry(rule.family.clone()).or_default() += rule.examples.len();
    }

    let mut frags: Vec<Fragment> = Vec::new();
    let mut by_kind: BTreeMap<Kind, Vec<usize>> = BTreeMap::new();
    let mut names: Vec<(String, String)> = Vec::new();
    let mut n = 0usize;
    for rule in engine.rules() {
        let per_example = PLANTS_PER_FAMILY
            .div_ceil(examples_per_family[&rule.family])
            .clamp(3, 10);
        let bound = file_bound(rule);
        let shape_of = |text: &str| {
            if bound {
                Shape::Multi {
                    text: text.trim_end_matches(['\n', '\r']).replace("\r\n", "\n"),
                    crlf: text.contains("\r\n"),
                }
            } else {
                classify(text)
            }
        };
        for template in &rule.examples {
            let probe_text = expand(template, &mut rng).unwrap();
            let probe = shape_of(&probe_text);
            let alternative = alternatives(&engine, &probe_text);
            let mut kinds = Kind::for_shape(&probe);
            let natural = kinds.remove(0);
            kinds.shuffle(&mut rng);
            kinds.insert(0, natural);
            for kind in kinds.into_iter().take(per_example) {
                n += 1;
                let text = expand(template, &mut rng).unwrap();
                let shape = shape_of(&text);
                if let Shape::Assign { name, value, .. } = &shape {
                    names.push((name.clone(), value.clone()));
                }
                let Some(lines) = render(&shape, kind, n, &rule.keywords, &mut rng) else {
                    continue;
                };
                let found = labels_of(&engine, &text);
                let own = found.iter().any(|(_, id, _)| *id == rule.id);
                let mut labels: Vec<Label> = found
                    .into_iter()
                    .map(|(family, id, secret)| {
                        let mut also = alternative.get(&id).cloned().unwrap_or_default();
                        let mut forms = vec![norm(&secret)];
                        if kind == Kind::K8sData {
                            if let Shape::Assign { value, .. } = &shape {
                                forms.push(norm(&base64::engine::general_purpose::STANDARD.encode(value)));
                            }
                        }
                        if matches!(kind, Kind::K8sData | Kind::K8sStringData) {
                            also.push("kubernetes".into());
                        }
                        if let (Kind::K8sData, Shape::Assign { value, .. }) = (kind, &shape) {
                            // Decoded, the value stands alone: rules for bare lines (a
                            // `.git-credentials` URL) may claim it.
                            also.extend(
                                labels_of(&engine, value)
                                    .into_iter()
                                    .map(|(f, _, _)| f)
                                    .filter(|f| f != "generic"),
                            );
                        }
                        Label {
                            family,
                            rule: id,
                            forms,
                            also,
                        }
                    })
                    .collect();
                if !own {
                    problems.push(format!(
                        "{}: example not found on its own by its rule (seed {seed:#x}): {text:?}",
                        rule.id
                    ));
                    labels.push(Label {
                        family: rule.family.clone(),
                        rule: rule.id.clone(),
                        forms: vec![norm(&text)],
                        also: vec![],
                    });
                }
                by_kind.entry(kind).or_default().push(frags.len());
                frags.push(Fragment {
                    lines,
                    labels,
                    text,
                    natural_name: None,
                    crlf: matches!(shape, Shape::Multi { crlf: true, .. }),
                });
            }
        }
        // Negative examples go in as decoys, verbatim, in files of their natural kind.
        for template in &rule.negative_examples {
            n += 1;
            let text = expand(template, &mut rng).unwrap();
            let shape = shape_of(&text);
            let kind = match Kind::for_shape(&shape)[0] {
                Kind::Compose | Kind::Dockerfile => Kind::Txt,
                k => k,
            };
            let ind = if kind == Kind::Raw { "" } else { kind.indent() };
            let lines = text
                .trim_end_matches(['\n', '\r'])
                .split('\n')
                .map(|l| format!("{ind}{}", l.trim_end_matches('\r')))
                .collect();
            by_kind.entry(kind).or_default().push(frags.len());
            frags.push(Fragment {
                lines,
                labels: vec![],
                text,
                natural_name: Some(format!("neg{n}/{}", natural_name_for_negative(&shape, n))),
                crlf: false,
            });
        }
    }

    let mut corpus = Corpus {
        files: Vec::new(),
        plants: Vec::new(),
    };
    let mut counter = 0;
    let names_for_decoys = names.clone();
    let mut decoys = move |kind: Kind, n: usize, rng: &mut StdRng| -> Option<Vec<String>> {
        for _ in 0..8 {
            let shape = decoy_shape(&names_for_decoys, rng);
            if let Some(lines) = render(&shape, kind, n * 1000 + rng.gen_range(0..1000), &[], rng) {
                return Some(lines);
            }
        }
        None
    };
    for (kind, ids) in by_kind {
        build_kind(kind, ids, &frags, &mut decoys, &mut rng, &mut corpus, &mut counter);
    }
    // Decoy-only files of every kind, and whole decoy files.
    for kind in [
        Kind::Env,
        Kind::Yaml,
        Kind::Json,
        Kind::Python,
        Kind::Js,
        Kind::Go,
        Kind::Terraform,
        Kind::Dockerfile,
        Kind::Shell,
        Kind::Properties,
        Kind::Compose,
        Kind::Ruby,
        Kind::Java,
    ] {
        for _ in 0..6 {
            counter += 1;
            let mut lines = Vec::new();
            for _ in 0..8 {
                if let Some(l) = decoys(kind, counter, &mut rng) {
                    lines.extend(l);
                }
            }
            let fr = frame(kind, counter);
            let path = if fr.path.ends_with('/') || fr.header.is_empty() && fr.path.is_empty() {
                format!("decoys/{}_{counter}.txt", kind.name())
            } else {
                format!("decoys/{}", fr.path)
            };
            let mut text = fr.header.join("\n");
            if kind == Kind::Json {
                for l in &mut lines {
                    if !l.trim_end().ends_with(['{', '[']) {
                        l.push(',');
                    }
                }
            }
            text = [text, lines.join("\n"), fr.footer.join("\n")].join("\n");
            corpus
                .files
                .push((path, encode(&format!("{text}\n"), false, Encoding::Utf8)));
        }
    }
    for (path, text) in decoy_files(&names, &mut rng) {
        corpus.files.push((format!("decoys/{path}"), text.into_bytes()));
    }
    (corpus, problems)
}

fn natural_name_for_negative(shape: &Shape, n: usize) -> String {
    match shape {
        Shape::Multi { text, .. } => natural_name(text, n),
        Shape::Json(json) => natural_name(json, n),
        Shape::Other(line) => natural_name(line, n),
        _ => format!("f{n}/notes.txt"),
    }
}

// ------------------------------------------------------------------------------------------
// The test.

#[derive(Default, Clone)]
struct Tally {
    planted: usize,
    found: usize,
    findings: usize,
    true_findings: usize,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

#[test]
fn recall_and_precision_per_family_on_a_labelled_corpus() {
    let seed = std::env::var("SIDEKEY_CORPUS_SEED")
        .ok()
        .map(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("SIDEKEY_CORPUS_SEED is hex"))
        .unwrap_or(DEFAULT_SEED);
    let started = std::time::Instant::now();
    let (corpus, problems) = build(seed);
    let tmp = tempfile::tempdir().unwrap();
    let root = match std::env::var_os("SIDEKEY_CORPUS_DIR") {
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            let _ = std::fs::remove_dir_all(dir.join("corpus"));
            dir
        }
        None => tmp.path().to_owned(),
    };
    let mut paths = BTreeSet::new();
    for (path, bytes) in &corpus.files {
        assert!(paths.insert(path.clone()), "two corpus files at {path}");
        let full = root.join("corpus").join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, bytes).unwrap();
    }
    let built = started.elapsed();

    let out = Command::new(bin("sidekey-scan"))
        .args(["corpus", "--format", "json", "--no-redact", "--output", "report.json"])
        .current_dir(&root)
        .output()
        .unwrap();
    let scanned = started.elapsed() - built;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "sidekey-scan failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("report.json")).unwrap()).unwrap();
    let findings = report["findings"].as_array().expect("findings");

    // Plants by file, to match findings against.
    let mut by_file: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in corpus.plants.iter().enumerate() {
        by_file.entry(p.file.as_str()).or_default().push(i);
    }
    let mut found_label: Vec<Vec<bool>> = corpus.plants.iter().map(|p| vec![false; p.labels.len()]).collect();
    let mut families: BTreeMap<String, Tally> = BTreeMap::new();
    let mut false_positives: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in findings {
        let (path, line, family, rule, secret) = (
            f["path"].as_str().unwrap(),
            f["line"].as_u64().unwrap() as usize,
            f["kind"].as_str().unwrap(),
            f["ruleId"].as_str().unwrap(),
            f["secret"].as_str().unwrap(),
        );
        let tally = families.entry(family.to_owned()).or_default();
        tally.findings += 1;
        let mut matched = false;
        for &i in by_file.get(path).map(Vec::as_slice).unwrap_or(&[]) {
            let plant = &corpus.plants[i];
            if line < plant.first || line > plant.last {
                continue;
            }
            for (j, label) in plant.labels.iter().enumerate() {
                if (label.family == family || label.also.iter().any(|a| a == family))
                    && same_secret(secret, &label.forms)
                {
                    found_label[i][j] = true;
                    matched = true;
                }
            }
        }
        if matched {
            tally.true_findings += 1;
        } else {
            let shown: String = secret.chars().take(100).collect();
            false_positives
                .entry(family.to_owned())
                .or_default()
                .push(format!("{path}:{line} {rule}: {shown:?}"));
        }
    }
    let mut formats: BTreeMap<String, Tally> = BTreeMap::new();
    let mut missed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, plant) in corpus.plants.iter().enumerate() {
        for (j, label) in plant.labels.iter().enumerate() {
            let hit = found_label[i][j];
            let t = families.entry(label.family.clone()).or_default();
            t.planted += 1;
            t.found += usize::from(hit);
            let t = formats.entry(plant.format.clone()).or_default();
            t.planted += 1;
            t.found += usize::from(hit);
            if !hit {
                let shown: String = plant.text.chars().take(160).collect();
                missed.entry(label.family.clone()).or_default().push(format!(
                    "{}:{}-{} [{}] {}: {shown:?}",
                    plant.file, plant.first, plant.last, plant.format, label.rule
                ));
            }
        }
    }

    let limit = std::env::var("SIDEKEY_CORPUS_SHOW")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "corpus seed {seed:#x}: {} files, {} planted secrets in {} plants, {} findings; built in {built:.1?}, scanned in {scanned:.1?}",
        corpus.files.len(),
        families.values().map(|t| t.planted).sum::<usize>(),
        corpus.plants.len(),
        findings.len()
    );
    let _ = writeln!(
        table,
        "{:<16} {:>8} {:>8} {:>6} {:>8} {:>10}",
        "family", "planted", "found", "FP", "recall", "precision"
    );
    let mut failures = Vec::new();
    for (family, t) in &families {
        let (recall, precision) = (ratio(t.found, t.planted), ratio(t.true_findings, t.findings));
        let _ = writeln!(
            table,
            "{family:<16} {:>8} {:>8} {:>6} {recall:>8.3} {precision:>10.3}",
            t.planted,
            t.found,
            t.findings - t.true_findings
        );
        if t.planted == 0 {
            failures.push(format!("{family}: findings but nothing planted"));
        }
        if recall < MIN_RECALL {
            failures.push(format!("{family}: recall {recall:.3} < {MIN_RECALL}"));
        }
        if precision < MIN_PRECISION {
            failures.push(format!("{family}: precision {precision:.3} < {MIN_PRECISION}"));
        }
    }
    let _ = writeln!(
        table,
        "\n{:<32} {:>8} {:>8} {:>8}",
        "format", "planted", "found", "recall"
    );
    for (format, t) in &formats {
        let _ = writeln!(
            table,
            "{format:<32} {:>8} {:>8} {:>8.3}",
            t.planted,
            t.found,
            ratio(t.found, t.planted)
        );
    }
    for (family, list) in &missed {
        let _ = writeln!(table, "\nmissed {family} ({}):", list.len());
        for m in list.iter().take(limit) {
            let _ = writeln!(table, "  {m}");
        }
    }
    for (family, list) in &false_positives {
        let _ = writeln!(table, "\nfalse positives {family} ({}):", list.len());
        for m in list.iter().take(limit) {
            let _ = writeln!(table, "  {m}");
        }
    }
    for p in &problems {
        let _ = writeln!(table, "note: {p}");
    }
    if !stderr.trim().is_empty() {
        let _ = writeln!(
            table,
            "\nsidekey-scan stderr:\n{}",
            stderr.lines().take(20).collect::<Vec<_>>().join("\n")
        );
    }
    eprintln!("{table}");
    assert!(failures.is_empty(), "{} (the table is above)", failures.join("; "));
}

#[test]
fn the_corpus_helpers_keep_secrets_intact() {
    let mut rng = StdRng::seed_from_u64(1);
    let json = r#"{"a": {"b": "x\"y", "c": []}, "d": [1, 2]}"#;
    let pretty = pretty_json(json, "");
    let back: serde_json::Value = serde_json::from_str(&pretty.join("\n")).unwrap();
    assert_eq!(back, serde_json::from_str::<serde_json::Value>(json).unwrap());
    assert_eq!(compact_json(json), r#"{"a":{"b":"x\"y","c":[]},"d":[1,2]}"#);
    assert!(matches!(
        classify("export FOO_TOKEN=abc"),
        Shape::Assign {
            natural: Kind::Shell,
            ..
        }
    ));
    assert!(matches!(classify("curl -H \"X: y\" https://a"), Shape::Command(_)));
    assert!(matches!(classify("a\nb\n"), Shape::Multi { .. }));
    assert!(matches!(classify("\"k\": \"v\""), Shape::Json(_)));
    assert_eq!(masked("sk_live_abc123"), "sk_live_xxxxxx");
    assert!(same_secret(
        "-----BEGIN X-----\\nAB\\n",
        &[norm("-----BEGIN X-----\nAB\n")]
    ));
    let _ = &mut rng;
    let _ = Path::new(".");
}
