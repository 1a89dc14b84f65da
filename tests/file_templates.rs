//! `[[file]]` templates that real config files need: one file combining several secrets by
//! qualified name, each value written through a filter for its reader — and read back by that
//! reader (Python's json, PyYAML, `sh`, python-dotenv, URL and base64 decoders) to exactly the
//! value, whatever quotes, newlines, `$`, backticks and backslashes it holds; the file
//! re-rendered when either secret changes; its owner and group applied, and a refused owner
//! keeping the old file; `check` naming every template mistake before the agent starts.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{bin, eventually, Agent, LOCAL_DEV};

/// `app` (a stored JSON object, re-read every 200 ms) and `session-key` (generated; its name
/// is no identifier, so templates reach it as `secrets["session-key"]`); the agent's own uid
/// may read and revoke both.
const SECRETS: &str = r#"
[secrets.app]
backend = "dev"
kind = "local.static"
refresh = "200ms"

[secrets.session-key]
backend = "dev"
kind = "local.generated"
rotate_every = "1h"

[[access]]
uid = "self"
secrets = ["*"]
revoke = true
"#;

/// One file per reader, each holding `app.user`, `app.password` and the session key through
/// its filter; `app.env` runs `on_change`. TOML literal strings: the template text as it is.
const FILES: &str = r#"
[[file]]
path = "@DIR@/app.json"
template = '''{"user": {{ app.user | json }}, "password": {{ app.password | json }}, "session": {{ secrets["session-key"].value | json }}}
'''

[[file]]
path = "@DIR@/app.yaml"
template = '''user: {{ app.user | yaml }}
password: {{ app.password | yaml }}
session: {{ secrets["session-key"].value | yaml }}
'''

[[file]]
path = "@DIR@/app.sh"
template = '''APP_USER={{ app.user | shell }}
APP_PASSWORD={{ app.password | shell }}
SESSION={{ secrets["session-key"].value | shell }}
'''

[[file]]
path = "@DIR@/app.env"
template = '''# written by sidekey
APP_USER={{ app.user | env }}
APP_PASSWORD={{ app.password | env }}
SESSION={{ secrets["session-key"].value | env }}
'''
on_change = ["sh", "-c", "echo \"$SIDEKEY_SECRET $SIDEKEY_VERSION\" >> @DIR@/changes.log"]

[[file]]
path = "@DIR@/url.txt"
template = '''postgres://{{ app.user | urlencode }}:{{ app.password | urlencode }}@db.internal:5432/app?key={{ secrets["session-key"].value | urlencode }}
'''

[[file]]
path = "@DIR@/b64.txt"
template = '''{{ app.user | base64 }} {{ app.password | base64 }} {{ secrets["session-key"].value | base64 }}
'''
"#;

/// Reads every file back with its reader and prints `{reader: {user, password, session}}`.
const READERS: &str = r#"
import base64, json, sys, urllib.parse
import yaml
from dotenv import dotenv_values

def text(name):
    with open(name, encoding="utf-8", newline="") as f:
        return f.read()

out = {}
out["json"] = json.loads(text("app.json"))
out["yaml"] = yaml.safe_load(text("app.yaml"))
env = dotenv_values("app.env", encoding="utf-8")
out["env"] = {"user": env["APP_USER"], "password": env["APP_PASSWORD"], "session": env["SESSION"]}
url = urllib.parse.urlsplit(text("url.txt").rstrip("\n"))
unquote = lambda s: urllib.parse.unquote(s, errors="strict")
out["urlencode"] = {
    "user": unquote(url.username),
    "password": unquote(url.password),
    "session": unquote(url.query.removeprefix("key=")),
}
b64 = [base64.b64decode(p, validate=True).decode("utf-8") for p in text("b64.txt").split()]
out["base64"] = dict(zip(["user", "password", "session"], b64))
print(json.dumps(out))
"#;

/// Values no naive template survives: both quotes, newlines and a CR, `$VAR`, `${VAR}`,
/// `$(cmd)`, backticks, backslashes (also before `n` and a quote), `#`, `=`, spaces at both
/// ends, a tab, non-ASCII and a LINE SEPARATOR; a random part makes each run's values unique.
fn awkward(n: u32) -> (String, String) {
    let r = format!("{:016x}", rand::random::<u64>());
    let user = format!("  o'brien \"{r}\" $USER ${{HOME}} `id` #{n} ");
    let password = format!("p{r}\n$(id) \\n \\\" \\\\'\r\n#=; &|<>\t é ☃\u{2028} ${{HOME:-x}}$ ");
    (user, password)
}

/// The readers, by the filter whose output each reads.
const READERS_OF: [&str; 6] = ["json", "yaml", "shell", "env", "urlencode", "base64"];

/// What each reader read, one `{user, password, session}` per reader.
fn read_back(dir: &Path) -> Value {
    let out = Command::new("python3")
        .args(["-c", READERS])
        .current_dir(dir)
        .env("HOME", "/nonexistent-home-of-the-test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "readers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut read: Value = serde_json::from_slice(&out.stdout).unwrap();
    read["shell"] = json!({
        "user": sourced(dir, "APP_USER"),
        "password": sourced(dir, "APP_PASSWORD"),
        "session": sourced(dir, "SESSION"),
    });
    read
}

/// Waits until every file holds `want` as its reader reads it (the six files are separate
/// deliveries, written one after the other); on time-out, names the readers that differ.
fn assert_read_back(dir: &Path, want: &Value) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let read = read_back(dir);
        let wrong: Vec<&str> = READERS_OF.into_iter().filter(|r| read[*r] != *want).collect();
        if wrong.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "these readers read other values: {wrong:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `$var` after `sh` sourced `app.sh`.
fn sourced(dir: &Path, var: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!(". ./app.sh; printf %s \"${var}\"")])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "sh: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn changes(agent: &Agent) -> Vec<String> {
    std::fs::read_to_string(agent.path("changes.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_reader_reads_back_exactly_the_values_of_two_secrets_and_each_change_is_rendered() {
    let agent = Agent::prepare(&format!("{LOCAL_DEV}{SECRETS}{FILES}"));
    let (user, password) = awkward(1);
    agent.store_set("app", &json!({ "user": user, "password": password }).to_string());
    let agent = agent.launch();
    agent.wait_served("app", Duration::from_secs(20));
    let session = agent.wait_served("session-key", Duration::from_secs(20))["data"]["value"]
        .as_str()
        .unwrap()
        .to_owned();

    eventually(Duration::from_secs(20), "the six files", || {
        ["app.json", "app.yaml", "app.sh", "app.env", "url.txt", "b64.txt"]
            .iter()
            .all(|f| agent.path(f).exists())
            .then_some(())
    });
    let dir = agent.dir.path();
    assert_read_back(dir, &json!({ "user": user, "password": password, "session": session }));
    eventually(Duration::from_secs(10), "on_change", || {
        (!changes(&agent).is_empty()).then_some(())
    });
    assert_eq!(changes(&agent), ["app,session-key 1,1"]);

    // A new version of either secret rewrites the file, once.
    let out = agent.cli(&["revoke", "--secret", "session-key"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_session = eventually(Duration::from_secs(20), "the new session key", || {
        let value = agent.get("session-key")["data"]["value"].as_str()?.to_owned();
        (value != session).then_some(value)
    });
    assert_read_back(
        dir,
        &json!({ "user": user, "password": password, "session": new_session }),
    );
    eventually(Duration::from_secs(10), "on_change", || {
        (changes(&agent).len() == 2).then_some(())
    });
    assert_eq!(changes(&agent)[1], "app,session-key 1,2");

    let (new_user, new_password) = awkward(2);
    agent.store_set(
        "app",
        &json!({ "user": new_user, "password": new_password }).to_string(),
    );
    assert_read_back(
        dir,
        &json!({ "user": new_user, "password": new_password, "session": new_session }),
    );
    eventually(Duration::from_secs(10), "on_change", || {
        (changes(&agent).len() == 3).then_some(())
    });
    assert_eq!(
        changes(&agent),
        ["app,session-key 1,1", "app,session-key 1,2", "app,session-key 2,2"]
    );

    // One render audit line per secret and write; private files; nothing leaked.
    let renders = agent
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "render" && e["path"].as_str().is_some_and(|p| p.ends_with("app.env")))
        .count();
    assert_eq!(renders, 6, "two secrets, three writes");
    assert_eq!(std::fs::metadata(agent.path("app.json")).unwrap().mode() & 0o777, 0o600);
    assert_eq!(agent.http("/v1/health").body, r#"{"status":"ok"}"#);
    agent.assert_never_leaked(&[user, password, new_user, new_password, session, new_session]);
}

#[test]
fn a_file_is_given_its_owner_and_group_and_an_owner_the_agent_may_not_give_keeps_the_old_file() {
    let root = nix::unistd::geteuid().is_root();
    if root {
        let agent = Agent::start(&format!(
            "{LOCAL_DEV}{SECRETS}
[[file]]
path = \"@DIR@/owned.env\"
template = \"S={{{{ secrets[\\\"session-key\\\"].value }}}}\\n\"
owner = \"nobody\"
group = 65534
mode = \"0640\"
"
        ));
        let meta = eventually(Duration::from_secs(20), "owned.env", || {
            std::fs::metadata(agent.path("owned.env")).ok()
        });
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (nobody.uid.as_raw(), 65534, 0o640)
        );
    }

    // An agent that is not root cannot give a file to root: as `nobody` when the test is root.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("agent.toml"),
        format!(
            "[agent]\nsocket = \"{d}/agent.sock\"\n{}{SECRETS}\n[[file]]\npath = \"{d}/owned.env\"\nsecret = \"session-key\"\ntemplate = \"S={{{{value}}}}\\n\"\nowner = \"root\"\ngroup = 0\n",
            LOCAL_DEV.replace("@DIR@", &d)
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("owned.env"), "OLD\n").unwrap();
    let mut command = if root {
        for entry in [
            dir.path().to_owned(),
            dir.path().join("owned.env"),
            dir.path().join("agent.toml"),
        ] {
            nix::unistd::chown(&entry, Some(65534.into()), Some(65534.into())).unwrap();
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin("sidekey-agent"));
        c
    } else {
        Command::new(bin("sidekey-agent"))
    };
    let out = command
        .args(["run", "--once", "--timeout", "30s", "--config", "agent.toml"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let file = format!("{d}/owned.env");
    assert!(
        stderr.contains(&format!("cannot give {file} to owner root (0), group 0")),
        "names the file and the owner: {stderr}"
    );
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "OLD\n", "the old file is kept");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("sidekey-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn check_names_the_file_the_key_and_the_name_of_each_template_mistake() {
    // `deploy` (aws.sts) has fixed fields; `app`'s depend on what is stored.
    let base = format!(
        "{LOCAL_DEV}{SECRETS}\n[backends.aws]\ntype = \"aws\"\nregion = \"us-east-1\"\n\n\
         [secrets.deploy]\nbackend = \"aws\"\nkind = \"aws.sts\"\nrole_arn = \"arn:aws:iam::123456789012:role/deploy\"\n"
    );
    for (file, says) in [
        (
            "template = '''a\nKEY={{ deploy.access_key_id | }}'''",
            &[
                "file[0].template",
                "line 2, column 29",
                "{{ deploy.access_key_id | }}",
                "syntax error",
            ][..],
        ),
        (
            "template = '''{{ secrets[\"sesion-key\"].value }}'''",
            &[
                "file[0].template",
                "unknown secret \"sesion-key\"",
                "configured: app, deploy, session-key",
            ],
        ),
        (
            "template = '''{{ session-key.value }}'''",
            &[
                "file[0].template",
                "\"session-key\" is not an identifier: write secrets[\"session-key\"].FIELD",
            ],
        ),
        (
            "template = '''{{ dbx.password }}'''",
            &["file[0].template", "\"dbx\" is not a secret"],
        ),
        (
            "template = '''{{ app.user | yml }}'''",
            &[
                "file[0].template",
                "unknown filter \"yml\"",
                "filters: json, yaml, shell, env, urlencode, base64",
            ],
        ),
        (
            "template = '''{{ deploy.secret_key | json }}'''",
            &[
                "file[0].template",
                "secret \"deploy\" has no field \"secret_key\"",
                "access_key_id, secret_access_key, session_token",
            ],
        ),
        (
            "secret = \"session-key\"\ntemplate = '''S={{ valeu }}'''",
            &["file[0].template", "has no field \"valeu\" (its fields: value)"],
        ),
        (
            "template = '''{{ app }}'''",
            &["file[0].template", "the whole secret \"app\""],
        ),
        ("template = '''constant'''", &["file[0].template", "names no secret"]),
        (
            "secret = \"app\"\nowner = \"no-such-user-sidekey\"",
            &["file[0].owner", "no user named \"no-such-user-sidekey\""],
        ),
    ] {
        let agent = Agent::prepare(&format!("{base}\n[[file]]\npath = \"@DIR@/out\"\n{file}\n"));
        let out = agent.cli(&["check", "--config", "agent.toml"]);
        let message = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {message}");
        assert!(message.contains("agent.toml"), "names the file: {message}");
        for word in says {
            assert!(message.contains(word), "{file}: no {word:?} in {message}");
        }
    }

    // The same config with good templates passes: qualified names, `secrets[…]`, filters.
    let good = Agent::prepare(&format!(
        "{base}\n[[file]]\npath = \"@DIR@/out\"\ntemplate = '''K={{{{ deploy.access_key_id | shell }}}} U={{{{ app.user | env }}}} S={{{{ secrets[\"session-key\"].value }}}}'''\nowner = \"root\"\n"
    ));
    let out = good.cli(&["check", "--config", "agent.toml"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 files"));
}
