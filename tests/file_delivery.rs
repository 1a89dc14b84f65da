//! `[[file]]` delivery: a secret rendered into a file for apps that read files — the content
//! is the served value, the mode is the configured one, every new version replaces the file
//! atomically and runs `on_change` once, a bad template is reported in `/v1/health` without
//! touching the old file, and rendered database credentials log in through re-issues.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{eventually, Agent, Stack, GRANT_SELF, LOCAL_DEV, VAULT_ROOT};

/// A `local.generated` secret `session` that changes every 2 s.
const ROTATING: &str = "[secrets.session]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"2s\"\n";

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The served `(version, value)` of `session`.
fn served(agent: &Agent) -> (u64, String) {
    let answer = agent.get("session");
    (
        answer["version"].as_u64().unwrap(),
        answer["data"]["value"].as_str().unwrap().to_owned(),
    )
}

/// Reads `path` in a loop on a thread until stopped; answers every distinct content seen, and
/// panics on the first read that is neither absent nor a whole `SESSION=<64 hex>\n` file.
struct Reader {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, Vec<String>)>,
}

impl Reader {
    fn start(path: PathBuf) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut reads, mut seen) = (0u64, Vec::<String>::new());
            while !stopped.load(Ordering::Relaxed) {
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => panic!("reading the file failed: {e}"),
                };
                reads += 1;
                let value = text
                    .strip_prefix("SESSION=")
                    .and_then(|t| t.strip_suffix('\n'))
                    .filter(|v| v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()));
                assert!(
                    value.is_some(),
                    "a reader saw a partial or empty file ({} bytes) after {reads} reads",
                    text.len()
                );
                if seen.last() != Some(&text) {
                    seen.push(text);
                }
            }
            (reads, seen)
        });
        Reader { stop, thread }
    }

    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the reader never saw a partial file")
    }
}

#[test]
fn a_rotating_secret_is_rendered_atomically_with_the_configured_mode() {
    let agent = Agent::start(&format!(
        r#"{LOCAL_DEV}{ROTATING}{GRANT_SELF}
[[file]]
secret = "session"
path = "@DIR@/session.env"
template = "SESSION={{{{ value }}}}\n"

[[file]]
secret = "session"
path = "@DIR@/session.json"
mode = "0640"
"#
    ));
    agent.wait_served("session", Duration::from_secs(20));
    let env = agent.path("session.env");
    let json = agent.path("session.json");
    let file_holds_served = || {
        let (version, value) = served(&agent);
        let text = std::fs::read_to_string(&env).ok()?;
        (text == format!("SESSION={value}\n")).then_some((version, value))
    };
    let (first, _) = eventually(
        Duration::from_secs(20),
        "the file holds the served value",
        file_holds_served,
    );
    assert_eq!(mode_of(&env), 0o600, "private by default");
    assert_eq!(mode_of(&json), 0o640, "exactly the configured mode");
    let json_value: serde_json::Value = eventually(Duration::from_secs(5), "session.json", || {
        serde_json::from_str(&std::fs::read_to_string(&json).ok()?).ok()
    });
    assert_eq!(
        json_value.as_object().unwrap().len(),
        1,
        "no template: the data as JSON"
    );
    assert!(json_value["value"].is_string());

    // A reader in a tight loop through at least three rotations never sees a partial file.
    let reader = Reader::start(env.clone());
    let (last, _) = eventually(Duration::from_secs(30), "three rotations, the file following", || {
        file_holds_served().filter(|(version, _)| *version >= first + 3)
    });
    let (reads, seen) = reader.finish();
    println!(
        "{reads} reads over versions {first}..={last}, {} distinct contents",
        seen.len()
    );
    assert!(
        seen.len() >= 3,
        "the file changed with the rotations: {} contents",
        seen.len()
    );
    assert_eq!(mode_of(&env), 0o600, "a new version keeps the mode");
    assert_eq!(mode_of(&json), 0o640);
    // The secret keeps rotating, so a write may be under way (its temporary file, a random
    // name, exists for a moment); one still there 2 s later was left behind.
    let temporary = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(agent.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("sidekey-tmp"))
            .collect()
    };
    let before = temporary();
    std::thread::sleep(Duration::from_secs(2));
    let leftovers: Vec<String> = temporary().intersection(&before).cloned().collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    let metrics = agent.http("/metrics").body;
    let written = format!(
        "sidekey_file_renders_total{{file=\"{}\",result=\"written\"}}",
        env.display()
    );
    assert!(metrics.contains(&written), "{written} in:\n{metrics}");
    let renders = agent.audit().into_iter().filter(|e| e["event"] == "render").count();
    assert!(renders >= 6, "a render line per file and version: {renders}");
    assert_eq!(agent.http("/v1/health").body, r#"{"status":"ok"}"#);

    let values: Vec<String> = seen
        .iter()
        .map(|t| t.trim_start_matches("SESSION=").trim_end().to_owned())
        .collect();
    agent.assert_never_leaked(&values);
}

#[test]
fn on_change_runs_once_per_new_version() {
    let agent = Agent::start(&format!(
        r#"{LOCAL_DEV}{ROTATING}{GRANT_SELF}
[[file]]
secret = "session"
path = "@DIR@/session.env"
template = "SESSION={{{{value}}}}\n"
on_change = ["sh", "-c", "echo \"$SIDEKEY_VERSION\" >> @DIR@/changes.log"]
"#
    ));
    let changes = || -> Vec<u64> {
        std::fs::read_to_string(agent.path("changes.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    agent.wait_served("session", Duration::from_secs(20));
    // Versions 1, 2, 3, … each ran the command once, in order; never one twice or ahead.
    eventually(Duration::from_secs(30), "on_change for three versions", || {
        let ran = changes();
        let (version, value) = served(&agent);
        assert!(
            ran.iter().copied().eq(1..=ran.len() as u64),
            "one run per version, in order: {ran:?}"
        );
        assert!(ran.len() as u64 <= version, "ran {ran:?} with version {version} served");
        let file = std::fs::read_to_string(agent.path("session.env")).unwrap_or_default();
        (version >= 3 && file == format!("SESSION={value}\n") && ran.len() as u64 == version).then_some(())
    });
    let ran = changes();
    println!("on_change ran for versions {ran:?}");
    let audit = agent.audit();
    assert!(
        !audit.iter().any(|e| e["action"] == "on_change"),
        "no on_change failure"
    );
    agent.assert_never_leaked(&[served(&agent).1]);
}

#[test]
fn a_template_naming_an_unknown_field_degrades_health_and_keeps_the_old_file() {
    // A `local.static` secret: its fields are what was stored, so `check` cannot know that
    // `pasword` is missing (for kinds with fixed fields it refuses the name: file_templates).
    let agent = Agent::prepare(&format!(
        r#"{LOCAL_DEV}{GRANT_SELF}
[secrets.session]
backend = "dev"
kind = "local.static"

[[file]]
secret = "session"
path = "@DIR@/bad.env"
template = "SESSION={{{{value}}}}\nOTHER={{{{ pasword }}}}\n"
on_change = ["sh", "-c", "echo ran >> @DIR@/changes.log"]

[[file]]
secret = "session"
path = "@DIR@/good.env"
template = "SESSION={{{{value}}}}\n"
"#
    ));
    std::fs::write(agent.path("bad.env"), "OLD CONTENT\n").unwrap();
    let stored = format!("{{\"value\":\"{:032x}\"}}", rand::random::<u128>());
    agent.store_set("session", &stored);
    let agent = agent.launch();
    let bad = agent.path("bad.env").display().to_string();

    let health = eventually(Duration::from_secs(20), "health naming the file", || {
        let h = agent.http("/v1/health");
        h.body.contains("pasword").then_some(h)
    });
    println!("{}", health.body);
    assert_eq!(health.status, 200, "the secret itself is served: {}", health.body);
    let body = health.json();
    assert_eq!(body["status"], "degraded");
    assert!(body.get("failing").is_none(), "no secret is failing: {body}");
    assert_eq!(body["files"][0]["path"], bad.as_str());
    assert_eq!(body["files"][0]["secret"], "session");
    let reason = body["files"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("unknown field \"pasword\""), "{reason}");
    assert!(reason.contains("(the secret has: value)"), "{reason}");

    // The agent keeps serving, the other file is written, the bad one keeps its old content.
    let value = agent.get("session")["data"]["value"].as_str().unwrap().to_owned();
    let good = eventually(Duration::from_secs(10), "good.env", || {
        std::fs::read_to_string(agent.path("good.env")).ok()
    });
    assert_eq!(good, format!("SESSION={value}\n"));
    assert_eq!(std::fs::read_to_string(agent.path("bad.env")).unwrap(), "OLD CONTENT\n");
    assert!(!agent.path("changes.log").exists(), "no on_change without a write");

    let metrics = agent.http("/metrics").body;
    let failed = format!("sidekey_file_renders_total{{file=\"{bad}\",result=\"error\"}} 1");
    assert!(metrics.contains(&failed), "{failed} in:\n{metrics}");
    let audit = agent.audit();
    let failure = audit
        .iter()
        .find(|e| e["event"] == "failure" && e["action"] == "render")
        .expect("the render failure is audited");
    assert!(failure["reason"].as_str().unwrap().contains(&bad), "{failure}");
    assert_eq!(failure["secret"], "session");
    assert!(agent.stderr().contains("file delivery failed"));
    agent.assert_never_leaked(&[value]);
}

#[test]
fn rendered_database_credentials_log_in_before_and_after_a_reissue() {
    let stack = Stack::get();
    let mount = stack.database_engine("5s", "15s");
    let agent = Agent::start(&format!(
        r#"{VAULT_ROOT}
[secrets.db]
backend = "vault"
kind = "vault.database"
mount = "{mount}"
role = "app"

[[file]]
secret = "db"
path = "@DIR@/db.env"
template = "DB_USER={{{{username}}}}\nDB_PASS={{{{password}}}}\n"

{GRANT_SELF}"#
    ));
    let path = agent.path("db.env");
    // The file's credentials, once they are the served ones.
    let rendered = || {
        let answer = agent.http("/v1/secrets/db");
        if answer.status != 200 {
            return None;
        }
        let answer = answer.json();
        let (user, password) = (
            answer["data"]["username"].as_str()?.to_owned(),
            answer["data"]["password"].as_str()?.to_owned(),
        );
        let text = std::fs::read_to_string(&path).ok()?;
        (text == format!("DB_USER={user}\nDB_PASS={password}\n")).then_some((user, password))
    };
    let (user, password) = eventually(Duration::from_secs(20), "db.env holds the served user", rendered);
    assert_eq!(mode_of(&path), 0o600);
    stack
        .pg_login(&user, &password)
        .expect("the rendered credentials log in");

    // The 15 s max TTL forces a new user; the file follows, and its credentials log in.
    let (new_user, new_password) = eventually(Duration::from_secs(40), "db.env holds a re-issued user", || {
        rendered().filter(|(u, _)| *u != user)
    });
    stack
        .pg_login(&new_user, &new_password)
        .expect("the re-issued credentials in the file log in");
    assert!(agent.audit().iter().any(|e| e["event"] == "reissue"));
    agent.assert_never_leaked(&[user, password, new_user, new_password]);
}

#[test]
fn check_refuses_a_template_that_does_not_parse() {
    let agent = Agent::prepare(&format!(
        "{LOCAL_DEV}{ROTATING}{GRANT_SELF}\n[[file]]\nsecret = \"session\"\npath = \"@DIR@/s.env\"\ntemplate = \"S={{{{value\"\n"
    ));
    let out = agent.cli(&["check", "--config", "agent.toml"]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(message.contains("file[0].template"), "{message}");
    assert!(message.contains("not closed"), "{message}");

    let good = Agent::prepare(&format!(
        "{LOCAL_DEV}{ROTATING}{GRANT_SELF}\n[[file]]\nsecret = \"session\"\npath = \"@DIR@/s.env\"\ntemplate = \"S={{{{ value }}}} {{{{{{{{literal}}\"\n"
    ));
    let out = good.cli(&["check", "--config", "agent.toml"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 files"));
}
