//! What a user deploys (`deploy/`, the `Dockerfile`), kept honest (issue 14):
//!
//! - every agent config in `deploy/` passes `sidekey-agent check --portable`, and every
//!   Kubernetes manifest parses as YAML (PyYAML, as `kubectl` would read it);
//! - the commands the manifests run are ones `sidekey-agent` accepts (`health`, `run --once`);
//! - the systemd unit passes `systemd-analyze verify` where that tool exists;
//! - the agent starts, serves and stops cleanly under the unit's sandbox as far as this machine
//!   can apply it without systemd: an unprivileged user, no capabilities, no new privileges,
//!   the file system read-only except its own directories, a private /tmp. Not exercised here:
//!   the seccomp-based options (`SystemCallFilter`, `MemoryDenyWriteExecute`,
//!   `RestrictAddressFamilies`, `RestrictNamespaces`, `LockPersonality`), which need systemd to
//!   install them, and the Docker image build, which needs a Docker daemon and network.
//! - the CI examples (`deploy/ci/`) parse, and their scan step, run on a real repository,
//!   scans what a push or a pull/merge request adds (issue 16).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin;
use rand::SeedableRng as _;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every document of every YAML file in `deploy/kubernetes`, as JSON (through PyYAML).
fn manifests() -> Vec<(String, serde_json::Value)> {
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    files
        .iter()
        .flat_map(|file| {
            let out = Command::new("python3")
                .arg("-c")
                .arg("import json, sys, yaml\nprint(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))")
                .arg(file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} does not parse: {}",
                file.display(),
                stderr(&out)
            );
            let docs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            docs.into_iter().map(move |d| (name.clone(), d))
        })
        .collect()
}

/// `sidekey-agent check --portable --config FILE` succeeds on `text`.
fn assert_checks(what: &str, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin("sidekey-agent"))
        .args(["check", "--portable", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{what}: {}", stderr(&out));
}

/// Every container of a pod template, init containers first.
fn containers(pod: &serde_json::Value) -> Vec<&serde_json::Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| pod[k].as_array())
        .flatten()
        .collect()
}

#[test]
fn the_agent_configs_in_the_kubernetes_examples_check() {
    let mut configs = 0;
    for (file, doc) in &manifests() {
        if doc["kind"] == "ConfigMap" {
            if let Some(text) = doc["data"]["agent.toml"].as_str() {
                assert_checks(&format!("{file}: ConfigMap {}", doc["metadata"]["name"]), text);
                configs += 1;
            }
        }
    }
    assert_eq!(configs, 2, "one agent config per example");
}

#[test]
fn the_kubernetes_examples_are_a_native_sidecar_and_an_init_step() {
    let docs = manifests();
    // The sidecar is a native one (an init container that restarts) probed with `health`,
    // on a socket volume the app mounts too, with a projected token for audience `vault`.
    let (_, deployment) = docs
        .iter()
        .find(|(f, d)| f == "sidecar.yaml" && d["kind"] == "Deployment")
        .expect("a Deployment in sidecar.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let sidecar = &pod["initContainers"][0];
    assert_eq!(sidecar["restartPolicy"], "Always");
    for probe in ["startupProbe", "readinessProbe"] {
        let command = &sidecar[probe]["exec"]["command"];
        assert_eq!(command[0], "sidekey-agent", "{probe}");
        assert_eq!(command[1], "health", "{probe}");
    }
    let token = &pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "vault-token")
        .unwrap()["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(token["audience"], "vault");
    for c in containers(pod) {
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false, "{}", c["name"]);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL", "{}", c["name"]);
    }

    // The one-shot variant runs `run --once` as a plain init container.
    let (_, job) = docs
        .iter()
        .find(|(f, d)| f == "init-once.yaml" && d["kind"] == "Job")
        .expect("a Job in init-once.yaml");
    let init = &job["spec"]["template"]["spec"]["initContainers"][0];
    assert!(init.get("restartPolicy").is_none());
    assert_eq!(init["args"][0], "run");
    assert_eq!(init["args"][1], "--once");
}

#[test]
fn the_commands_in_the_examples_are_ones_the_agent_accepts() {
    // `health` with no agent behind the socket: 1 and a reason, not a usage error (2).
    let out = Command::new(bin("sidekey-agent"))
        .args(["health", "--socket", "/nonexistent/agent.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // `run --once` with a config that does not exist: the config is what is wrong.
    let out = Command::new(bin("sidekey-agent"))
        .args(["run", "--once", "--config", "/nonexistent/agent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/agent.toml"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("unexpected argument"), "{}", stderr(&out));
}

#[test]
fn the_systemd_example_config_checks_and_the_unit_verifies() {
    let text = std::fs::read_to_string(repo().join("deploy/systemd/agent.toml")).unwrap();
    assert_checks("deploy/systemd/agent.toml", &text);

    let unit = std::fs::read_to_string(repo().join("deploy/systemd/sidekey-agent.service")).unwrap();
    for option in [
        "Type=notify",
        "RuntimeDirectory=sidekey",
        "StateDirectory=sidekey",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "MemoryDenyWriteExecute=yes",
        "PrivateTmp=yes",
    ] {
        assert!(unit.contains(option), "the unit lacks {option:?}");
    }
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("systemd-analyze not installed: `verify` not exercised");
        return;
    };
    // Verified as installed, with ExecStart pointing at the binary built here.
    let dir = tempfile::tempdir().unwrap();
    let installed = unit.replace(
        "/usr/local/bin/sidekey-agent",
        &bin("sidekey-agent").display().to_string(),
    );
    let path = dir.path().join("sidekey-agent.service");
    std::fs::write(&path, installed).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(
        !said.contains("sidekey-agent.service:"),
        "systemd-analyze verify warns: {said}"
    );
}

/// The path of `program` on PATH.
fn which(program: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn the_agent_runs_under_the_units_sandbox_as_far_as_this_machine_applies_it() {
    // The unit's directories, owned by the service's user (here `nobody`), the rest of the
    // file system read-only (ProtectSystem=strict), a private /tmp, no capabilities and no new
    // privileges, umask 0077.
    // Not under /tmp, which gets a private tmpfs.
    let root = tempfile::tempdir_in("/var/tmp").unwrap();
    let run = root.path().join("run");
    let state = root.path().join("state");
    let logs = root.path().join("logs");
    let config = root.path().join("etc");
    for d in [&run, &state, &logs, &config] {
        std::fs::create_dir(d).unwrap();
    }
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
    for d in [&run, &state, &logs] {
        nix::unistd::chown(d.as_path(), Some(nobody.uid), Some(nobody.gid)).unwrap();
    }
    let toml = format!(
        "[agent]\nsocket = \"{run}/agent.sock\"\naudit_log = \"{logs}/audit.jsonl\"\n\
         cache = \"{state}/cache\"\ncache_key_file = \"{etc}/cache.key\"\n\n\
         [backends.dev]\ntype = \"local\"\npath = \"{state}/local.store\"\nkey_file = \"{state}/local.key\"\n\n\
         [secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"*\"]\n",
        run = run.display(),
        logs = logs.display(),
        state = state.display(),
        etc = config.display()
    );
    std::fs::write(config.join("agent.toml"), toml).unwrap();
    // The cache's key file made beforehand (the config directory is read-only to the service;
    // the local store's key is created in the state directory at first start).
    {
        let path = config.join("cache.key");
        std::fs::write(&path, crate::support::unique("key-material-")).unwrap();
        nix::unistd::chown(path.as_path(), Some(nobody.uid), Some(nobody.gid)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // A mount namespace: / read-only, the unit's directories bound writable, a private /tmp.
    let writable: Vec<String> = [&run, &state, &logs].iter().map(|d| d.display().to_string()).collect();
    let script = format!(
        "set -e\n\
         for d in {dirs}; do mount --bind \"$d\" \"$d\"; done\n\
         mount -t tmpfs -o mode=1777 tmpfs /tmp\n\
         mount -o remount,bind,ro /\n\
         umask 0077\n\
         exec setpriv --reuid={uid} --regid={gid} --clear-groups --no-new-privs \
              --inh-caps=-all --bounding-set=-all \"$@\"\n",
        dirs = writable.join(" "),
        uid = nobody.uid,
        gid = nobody.gid,
    );
    // Installed outside /tmp (as /usr/local/bin would be): the private /tmp hides the build's.
    let installed = root.path().join("sidekey-agent");
    std::fs::copy(bin("sidekey-agent"), &installed).unwrap();
    let mut agent = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script, "sh"])
        .arg(&installed)
        .args(["run", "--config"])
        .arg(config.join("agent.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let socket = run.join("agent.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        if let Some(status) = agent.try_wait().unwrap() {
            let out = agent.wait_with_output().unwrap();
            panic!("the agent exited with {status} under the sandbox: {}", stderr(&out));
        }
        assert!(Instant::now() < deadline, "no socket after 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }

    // It serves (to its own user, as [[access]] says).
    let value = crate::support::eventually(Duration::from_secs(20), "the secret served", || {
        let get = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(bin("sidekey-agent"))
            .args(["get", "s", "--field", "value", "--socket"])
            .arg(&socket)
            .output()
            .unwrap();
        get.status
            .success()
            .then(|| String::from_utf8_lossy(&get.stdout).trim().to_owned())
    });
    assert_eq!(value.len(), 64);

    // It stops cleanly: SIGTERM, exit 0, socket gone, cache written.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = wait_with_timeout(agent, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!socket.exists(), "socket left behind");
    assert!(state.join("cache").exists(), "{}", stderr(&out));
    assert_eq!(
        std::fs::metadata(state.join("cache")).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// Waits for `child` at most `limit`, killing it past that.
fn wait_with_timeout(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            let out = child.wait_with_output().unwrap();
            panic!("did not stop within {limit:?}: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_dockerfile_builds_both_binaries_into_a_shell_less_non_root_image() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "multi-stage: {stages:?}");
    assert!(
        stages[1].contains("distroless") && stages[1].ends_with(":nonroot"),
        "{stages:?}"
    );
    assert!(text.contains("--locked -p sidekey-agent -p sidekey-scanner"));
    let user = text.lines().rfind(|l| l.starts_with("USER ")).unwrap();
    assert_ne!(user.trim_start_matches("USER ").split(':').next(), Some("0"));
    assert!(text.contains(r#"ENTRYPOINT ["/usr/local/bin/sidekey-agent"]"#));
    let ignored = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for path in ["target", ".stack", ".git"] {
        assert!(ignored.lines().any(|l| l == path), ".dockerignore lacks {path}");
    }
}

/// `git` in `dir` (isolated from the user's configuration), its output trimmed.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = crate::support::git::isolated("git", dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_ci_examples_parse_and_their_scan_step_scans_what_a_push_or_request_adds() {
    for file in ["deploy/ci/github-actions.yml", "deploy/ci/gitlab-ci.yml"] {
        let out = Command::new("python3")
            .args(["-c", "import sys, yaml; yaml.safe_load(open(sys.argv[1]))"])
            .arg(repo().join(file))
            .output()
            .unwrap();
        assert!(out.status.success(), "{file} does not parse: {}", stderr(&out));
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(
            text.contains("deploy/ci/scan-range.sh") && text.contains("SIDEKEY_REF"),
            "{file}"
        );
    }

    // A repository: a clean commit, one that leaks a token, one more; a branch off the leak.
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    git(work, &["init", "-q", "-b", "main"]);
    let commit = |file: &str, text: &str| {
        std::fs::write(work.join(file), text).unwrap();
        git(work, &["add", file]);
        git(work, &["commit", "-q", "-m", file]);
        git(work, &["rev-parse", "HEAD"])
    };
    let clean = commit("README", "hello\n");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let token = sidekey_scanner::rules::examples::expand("{github:ghp}", &mut rng).unwrap();
    let leak = commit("app.env", &format!("GITHUB_TOKEN={token}\n"));
    commit("NOTES", "more\n");

    let path = format!(
        "{}:{}",
        bin("sidekey-scan").parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let step = |env: &[(&str, &str)]| {
        let sarif = work.join("out.sarif");
        let _ = std::fs::remove_file(&sarif);
        let mut cmd = crate::support::git::isolated("sh", work);
        cmd.arg(repo().join("deploy/ci/scan-range.sh"))
            .env("PATH", &path)
            .env("SARIF", &sarif)
            .env_remove("BEFORE")
            .env_remove("BASE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let results = std::fs::read(&sarif).ok().map(|b| {
            serde_json::from_slice::<serde_json::Value>(&b).unwrap()["runs"][0]["results"]
                .as_array()
                .unwrap()
                .len()
        });
        (out.status.code(), results, stderr(&out))
    };

    let (code, results, err) = step(&[("BEFORE", &clean)]);
    assert_eq!((code, results), (Some(1), Some(1)), "a push of the leak: {err}");
    assert!(
        err.contains(&format!("{clean}..HEAD")) && err.contains("github"),
        "{err}"
    );
    assert!(!err.contains(&token), "the job log shows the token redacted: {err}");
    let (code, results, err) = step(&[("BEFORE", &leak)]);
    assert_eq!((code, results), (Some(0), Some(0)), "a later push: {err}");
    let (code, results, err) = step(&[("BEFORE", "0000000000000000000000000000000000000000")]);
    assert_eq!(
        (code, results),
        (Some(1), Some(1)),
        "a first push scans the whole history: {err}"
    );

    git(work, &["checkout", "-q", "-b", "feature", &leak]);
    git(work, &["branch", "-q", "-f", "base", &clean]);
    commit("feature.txt", "x\n");
    let (code, _, err) = step(&[("BASE", "base")]);
    assert_eq!(code, Some(1), "a request from a branch holding the leak: {err}");
    let (code, _, err) = step(&[("BASE", "main")]);
    assert_eq!(
        code,
        Some(0),
        "a request whose base already has the leak adds none: {err}"
    );
}
