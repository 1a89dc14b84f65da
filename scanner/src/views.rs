//! Format views: the key/value pairs of a structured file written again as one
//! `key = "value"` line each, so that the rules — which look for a key next to its value on a
//! line — find values that the file's own layout puts elsewhere:
//!
//! - **YAML** ([`yaml`]): a value on the line after its key, block scalars (`|`, `>`), a value
//!   folded or continued over several lines, a nested key (`twilio:` then `auth_token:` is
//!   `twilio_auth_token`), Kubernetes `env` entries (`- name: X` / `value: ...` is `X`),
//!   `stringData`, and `data` values decoded from base64.
//! - **XML and .NET config** ([`xml`]): attributes (`<add key="Twilio:ApiKey" value="..."/>` is
//!   `Twilio_ApiKey`, `<user password="..."/>` is `user_password`) and element text
//!   (`<password>...</password>`), entities decoded.
//! - **Jupyter notebooks** ([`notebook`]): each cell's source and text outputs joined as the
//!   text they are (not JSON strings), each line reported at the notebook's line.
//! - **INI, TOML, properties, HCL** ([`sections`]): a key qualified by its section or block
//!   (`[stripe]` then `secret_key = ...`), and properties values continued with `\`.
//! - **Source code** ([`code`]): string constants in the forms the assignment rules do not
//!   read (`#define KEY "..."`, `KEY: &str = "..."`, `@"..."`, `[]byte("...")`).
//!
//! The scan driver runs the engine over the view as well as over the file; a secret the file
//! itself already showed is reported once, at the file's place. Each view line maps back to
//! the line and column of its value in the file ([`View::origin`]). A view is made only for a
//! file read whole in one window and no larger than [`MAX_FILE`]; a file that does not parse
//! gives the pairs read before the error (the raw scan has covered all of it anyway).

pub mod code;
pub mod notebook;
pub mod sections;
pub mod xml;
pub mod yaml;

/// Largest file a view is made of.
pub const MAX_FILE: usize = 4 * 1024 * 1024;
/// Longest value written into a view (longer ones are data, and the raw scan saw them).
const MAX_VALUE: usize = 8 * 1024;

/// The formats with a view, chosen by the file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yaml`, `.yml`
    Yaml,
    /// `.xml`, `.config`, `.csproj`, `.plist`, ...
    Xml,
    /// `.ipynb`
    Notebook,
    /// `.ini`, `.cfg`, `.conf`, `.toml`, `.properties`, `.hcl`, `.tf`, `.tfvars`
    Sections,
    /// Source files of the languages whose constant forms [`code`] reads: C, C++,
    /// Objective-C, Rust, Go.
    Code,
}

impl Format {
    /// The format of the file at `path` (the last component of an archive member's path).
    pub fn of(path: &str) -> Option<Format> {
        Format::of_extension(&extension(path))
    }

    /// The format of a file with the (lowercase) extension `ext`.
    fn of_extension(ext: &str) -> Option<Format> {
        Some(match ext {
            "yaml" | "yml" => Format::Yaml,
            "xml" | "config" | "csproj" | "vbproj" | "fsproj" | "props" | "targets" | "plist" | "resx" | "nuspec"
            | "pubxml" | "xaml" | "wsdl" | "jmx" => Format::Xml,
            "ipynb" => Format::Notebook,
            "ini" | "cfg" | "conf" | "cnf" | "toml" | "properties" | "hcl" | "tf" | "tfvars" | "nomad" => {
                Format::Sections
            }
            "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "m" | "mm" | "rs" | "go" | "ino" => Format::Code,
            _ => return None,
        })
    }
}

/// The extension of the file at `path` (of an archive member's last component), lowercase.
fn extension(path: &str) -> String {
    let name = path.rsplit(['/', '!']).next().unwrap_or(path).to_ascii_lowercase();
    name.rsplit_once('.').map_or(String::new(), |(_, e)| e.to_owned())
}

/// A view: lines of `key = "value"`, each with the place of its value in the file.
#[derive(Debug, Default)]
pub struct View {
    text: Vec<u8>,
    /// Per line of `text`: the file's 1-based line and column of the value.
    origins: Vec<(usize, usize)>,
}

impl View {
    /// The view of `bytes` (the whole file at `path`), when the format has one and it holds
    /// at least one pair.
    pub fn of(path: &str, bytes: &[u8]) -> Option<View> {
        if bytes.len() > MAX_FILE {
            return None;
        }
        let ext = extension(path);
        let format = Format::of_extension(&ext)?;
        let text = std::str::from_utf8(bytes).ok()?;
        let mut view = View::default();
        match format {
            Format::Yaml => yaml::pairs(text, &mut view),
            Format::Xml => xml::pairs(text, &mut view),
            Format::Notebook => notebook::lines(text, &mut view),
            Format::Sections => sections::pairs(text, &mut view),
            Format::Code => code::pairs(text, &ext, &mut view),
        }
        (!view.origins.is_empty()).then_some(view)
    }

    /// The view's text.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// Where the value on view line `line` (1-based) is in the file: its line and column.
    pub fn origin(&self, line: usize) -> (usize, usize) {
        self.origins.get(line.saturating_sub(1)).copied().unwrap_or((1, 1))
    }

    /// Adds `key = "value"` for the value at `line`:`column` of the file. The key keeps its
    /// letters, digits, `_`, `.` and `-` (anything else becomes `_`); a value over several
    /// lines is added joined when its lines are pieces of one token (a key wrapped by an
    /// editor), and line by line otherwise.
    pub fn pair(&mut self, key: &str, value: &str, line: usize, column: usize) {
        let value = value.trim();
        if key.is_empty() || value.is_empty() || value.len() > MAX_VALUE {
            return;
        }
        if value.contains('\n') {
            let pieces: Vec<&str> = value.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let token = |p: &&str| !p.contains([' ', '\t', '"', '\'']);
            if pieces.len() > 1 && pieces.iter().all(token) {
                self.one(key, &pieces.concat(), line, column);
            }
            for (i, piece) in value.lines().enumerate() {
                if !piece.trim().is_empty() {
                    self.one(key, piece.trim(), line + i, column);
                }
            }
            return;
        }
        self.one(key, value, line, column);
    }

    fn one(&mut self, key: &str, value: &str, line: usize, column: usize) {
        for c in key.chars() {
            let keep = c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
            self.text.push(if keep { c as u8 } else { b'_' });
        }
        let quote = if !value.contains('"') {
            "\""
        } else if !value.contains('\'') {
            "'"
        } else {
            ""
        };
        self.text.extend_from_slice(b" = ");
        self.text.extend_from_slice(quote.as_bytes());
        self.text.extend_from_slice(value.as_bytes());
        self.text.extend_from_slice(quote.as_bytes());
        self.text.push(b'\n');
        self.origins.push((line, column));
    }

    /// Adds a line of text as it is (a notebook cell's line), found at `line`:`column`.
    pub fn line(&mut self, text: &str, line: usize, column: usize) {
        self.text.extend_from_slice(text.as_bytes());
        self.text.push(b'\n');
        self.origins.push((line, column));
    }
}

/// 1-based line and column (in characters) of byte `at` of `text`, for parsers that give
/// offsets. `starts` are the offsets of line starts ([`line_starts`]).
fn position(text: &str, starts: &[usize], at: usize) -> (usize, usize) {
    let line = starts.partition_point(|s| *s <= at).max(1);
    let start = starts[line - 1];
    let column = text.get(start..at).map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

/// The offsets where lines start.
pub(crate) fn line_starts(text: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', text).map(|i| i + 1))
        .collect()
}

#[cfg(test)]
mod tests;
