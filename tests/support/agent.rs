//! A real `sidekey-agent run` in a directory of its own, stopped (SIGTERM) when dropped.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::http::{self, Response};

/// A built binary of this workspace (`tests/run.sh` builds them before the tests), found
/// beside the test executable as ripgrep's harness does.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build with `cargo build --workspace --bins` (tests/run.sh does)",
        path.display()
    );
    path
}

/// The `[agent]` table every test agent gets unless its config has one: socket and audit log
/// in the agent's directory.
pub const AGENT: &str = "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\n";

/// A backend `vault` on the test OpenBao, logged in with the root token.
pub const VAULT_ROOT: &str = "[backends.vault]\ntype = \"vault\"\naddress = \"@VAULT@\"\nauth = { method = \"token\", token_file = \"@TOKEN_FILE@\" }\n";

/// A backend `vault` on the test OpenBao, logged in with AppRole (files `role-id`, `secret-id`).
pub fn vault_approle(mount: &str) -> String {
    format!("[backends.vault]\ntype = \"vault\"\naddress = \"@VAULT@\"\nauth = {{ method = \"approle\", mount = \"{mount}\", role_id_file = \"@DIR@/role-id\", secret_id_file = \"@DIR@/secret-id\" }}\n")
}

/// An agent with a fingerprint key (`@DIR@/fp.key`, written by the test) serving `db`, a
/// dynamic PostgreSQL user from the database engine at `mount`, to its own uid; `extra` is more
/// TOML (`[registry]`, `revoke = true` on the access rule when `revoke`).
pub fn fingerprinted_db_agent(mount: &str, revoke: bool, extra: &str) -> String {
    format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\nfingerprint_key_file = \"@DIR@/fp.key\"\n\n\
         {extra}\n{VAULT_ROOT}\n[secrets.db]\nbackend = \"vault\"\nkind = \"vault.database\"\nmount = \"{mount}\"\nrole = \"app\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"db\"]\nrevoke = {revoke}\n"
    )
}

/// A backend `dev` of type local in the agent's directory.
pub const LOCAL_DEV: &str =
    "[backends.dev]\ntype = \"local\"\npath = \"@DIR@/dev.store\"\nkey_file = \"@DIR@/dev.key\"\n";

/// Grants every secret to the agent's own uid (the tests run as that uid).
pub const GRANT_SELF: &str = "[[access]]\nuid = \"self\"\nsecrets = [\"*\"]\n";

/// A running agent. Every secret value it serves through `http`/`get`/`wait_served` is
/// remembered, and so is every error it renders (an error answer's body, a client command's
/// stderr); when the agent is dropped (the test passed) its stderr, audit log, `/metrics` and
/// those errors are searched for each value: the whole end-to-end suite is a leak search.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Option<Child>,
    served: std::sync::Mutex<std::collections::BTreeSet<String>>,
    errors: std::sync::Mutex<String>,
}

impl Agent {
    /// Writes `config` (TOML; `@DIR@` is replaced by the agent's directory, `@VAULT@` by the
    /// OpenBao address, `@TOKEN_FILE@` by a file holding the root token) and starts the agent
    /// in that directory. The socket is `agent.sock`, the audit log `audit.jsonl`.
    pub fn start(config: &str) -> Agent {
        let agent = Agent::prepare(config);
        agent.launch()
    }

    /// Like `start`, with extra files (name, content) written into the directory first.
    pub fn start_with_files(config: &str, files: &[(&str, &str)]) -> Agent {
        let agent = Agent::prepare(config);
        for (name, content) in files {
            fs::write(agent.path(name), format!("{content}\n")).unwrap();
        }
        agent.launch()
    }

    /// Like `start`, but the directory is world-traversable (for clients running as `nobody`).
    pub fn start_shared(config: &str) -> Agent {
        let agent = Agent::prepare(config);
        fs::set_permissions(agent.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        agent.launch()
    }

    /// Writes the config and files but does not start the agent (see `launch`).
    pub fn prepare(config: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let token_file = dir.path().join("vault-token");
        if let Ok(token) = std::env::var("SIDEKEY_TEST_VAULT_TOKEN") {
            fs::write(&token_file, format!("{token}\n")).unwrap();
        }
        let vault = std::env::var("SIDEKEY_TEST_VAULT_ADDR").unwrap_or_default();
        let config = if config.contains("[agent]") {
            config.to_owned()
        } else {
            format!("{AGENT}\n{config}")
        };
        let text = config
            .replace("@DIR@", &d)
            .replace("@VAULT@", &vault)
            .replace("@TOKEN_FILE@", &token_file.display().to_string());
        fs::write(dir.path().join("agent.toml"), text).unwrap();
        let socket = dir.path().join("agent.sock");
        Agent {
            dir,
            socket,
            child: None,
            served: Default::default(),
            errors: Default::default(),
        }
    }

    /// Starts a prepared agent.
    pub fn launch(self) -> Agent {
        self.launch_with_env(&[])
    }

    /// Starts a prepared agent with extra environment variables.
    pub fn launch_with_env(self, env: &[(&str, &str)]) -> Agent {
        let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, Some(*v))).collect();
        self.launch_with(&env)
    }

    /// Starts a prepared agent with environment variables set (`Some`) or removed (`None`).
    pub fn launch_with(mut self, env: &[(&str, Option<&str>)]) -> Agent {
        let stderr = fs::File::create(self.path("stderr.log")).unwrap();
        let mut command = Command::new(bin("sidekey-agent"));
        for (key, value) in env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let child = command
            .args(["run", "--config", "agent.toml"])
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info,sidekey_agent=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start sidekey-agent");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.socket.exists() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sidekey-agent exited with {status} before serving:\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "no socket after 20s:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        self
    }

    /// A file in the agent's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `GET path` on the agent's socket.
    pub fn http(&self, path: &str) -> Response {
        let r = http::get(&self.socket, path).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.stderr()));
        if r.status == 200 && path.starts_with("/v1/secrets/") {
            if let Ok(answer) = serde_json::from_str::<serde_json::Value>(&r.body) {
                self.remember(&answer["data"]);
            }
        } else if r.status >= 400 {
            self.rendered(&r.body);
        }
        r
    }

    /// Remembers an error message the agent rendered (for the leak search at drop).
    fn rendered(&self, text: &str) {
        let mut errors = self.errors.lock().unwrap();
        errors.push_str(text);
        errors.push('\n');
    }

    /// Remembers the secret string values in `data` (for the leak search at drop).
    fn remember(&self, data: &serde_json::Value) {
        let Some(map) = data.as_object() else { return };
        let mut served = self.served.lock().unwrap();
        for (field, value) in map {
            if let Some(v) = value
                .as_str()
                .filter(|v| v.len() >= 8 && !sidekey::fingerprint::PUBLIC_FIELDS.contains(&field.as_str()))
            {
                served.insert(v.to_owned());
            }
        }
    }

    /// `GET /v1/secrets/{name}`, expecting 200; answers the JSON.
    pub fn get(&self, name: &str) -> serde_json::Value {
        let r = self.http(&format!("/v1/secrets/{name}"));
        assert_eq!(r.status, 200, "GET {name}: {}", r.body);
        r.json()
    }

    /// Waits until `name` is served and answers it.
    pub fn wait_served(&self, name: &str, timeout: Duration) -> serde_json::Value {
        super::eventually(timeout, &format!("{name} served"), || {
            let r = self.http(&format!("/v1/secrets/{name}"));
            (r.status == 200).then(|| r.json())
        })
    }

    /// `sidekey-agent store set --config agent.toml NAME` with `value` on stdin: sets a
    /// `local.static` secret, before the agent is launched or while it runs.
    pub fn store_set(&self, name: &str, value: &str) {
        use std::io::Write as _;
        let mut set = Command::new(bin("sidekey-agent"))
            .args(["store", "set", "--config", "agent.toml", name])
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        set.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
        let out = set.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        self.rendered(&stderr);
        assert!(out.status.success(), "store set {name}: {stderr}");
    }

    /// Runs `sidekey-agent ARGS` (a client command) against this agent's socket.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = Command::new(bin("sidekey-agent"))
            .args(args)
            .env("SIDEKEY_SOCKET", &self.socket)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        self.rendered(&String::from_utf8_lossy(&out.stderr));
        out
    }

    /// What the agent wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.path("stderr.log")).unwrap_or_default()
    }

    /// The audit log so far, one JSON value per line.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        fs::read_to_string(self.path("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}")))
            .collect()
    }

    /// Asserts that no value in `values` appears in stderr, the audit log, `/metrics` or an
    /// error the agent rendered.
    pub fn assert_never_leaked(&self, values: &[String]) {
        if let Some(leak) = self.leak(values) {
            panic!("{leak}");
        }
    }

    /// Where a value of `values` (of 8 bytes or more) appears, if anywhere: stderr, the audit
    /// log, rendered errors and, while the agent runs, `/metrics`.
    fn leak(&self, values: &[String]) -> Option<String> {
        let metrics = match self.child {
            Some(_) => {
                // The audit writer flushes within 200 ms.
                std::thread::sleep(Duration::from_millis(300));
                self.http("/metrics").body
            }
            None => String::new(),
        };
        let audit = fs::read_to_string(self.path("audit.jsonl")).unwrap_or_default();
        let stderr = self.stderr();
        let errors = self.errors.lock().unwrap().clone();
        let texts = [
            ("stderr", &stderr),
            ("audit log", &audit),
            ("/metrics", &metrics),
            ("rendered errors", &errors),
        ];
        values.iter().filter(|v| v.len() >= 8).find_map(|value| {
            let (what, _) = texts.iter().find(|(_, text)| text.contains(value.as_str()))?;
            Some(format!("a secret value appeared in the agent's {what}"))
        })
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("agent running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("agent did not stop within 20s of SIGTERM:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let leak = if std::thread::panicking() {
            None
        } else {
            let values: Vec<String> = self.served.lock().unwrap().iter().cloned().collect();
            self.leak(&values)
        };
        // Stopped before any panic below, so that no agent outlives its test.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- agent stderr ({}) ---\n{}",
                self.dir.path().display(),
                self.stderr()
            );
        }
        if let Some(leak) = leak {
            panic!("{leak}");
        }
    }
}

/// Values of every string field of a secret answer's `data`.
pub fn values_of(answer: &serde_json::Value) -> Vec<String> {
    answer["data"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}
