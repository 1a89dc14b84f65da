use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use sidekey::template::{Fields, Names, Template};
use sidekey::SecretData;

use super::*;
use crate::backend::Issued;

/// `text` bound as the template of a file whose own secret is `own`, among `secrets` (every
/// kind's fields taken from the data).
fn template(own: Option<&str>, secrets: &[&SecretName], text: &str) -> template::Bound {
    let secrets: BTreeMap<SecretName, Fields> = secrets.iter().map(|n| ((*n).clone(), None)).collect();
    Template::parse(text)
        .unwrap()
        .bind(Names { own, secrets: &secrets })
        .unwrap()
}

/// A `[[file]]` at `path` rendering `template`'s secrets (or `own` as JSON).
fn spec(own: Option<&SecretName>, path: &Path, template: Option<template::Bound>) -> FileSpec {
    FileSpec {
        secret: own.cloned(),
        secrets: match &template {
            Some(t) => t.secrets().to_vec(),
            None => own.into_iter().cloned().collect(),
        },
        path: path.to_owned(),
        template,
        mode: 0o600,
        owner: None,
        group: None,
        on_change: vec![],
    }
}

/// A fresh directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let path = std::env::temp_dir().join(format!("sidekey-delivery-test-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&path).unwrap();
        Dir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn on_change_failures_and_timeouts_are_errors_not_panics() {
    let env = [("SIDEKEY_VERSION", "7".to_owned())];
    let sh = |script: &str| vec!["-c".to_owned(), script.to_owned()];
    let dir = Dir::new();
    let out = dir.path().join("out");
    let script = format!("echo \"$SIDEKEY_VERSION\" > {}", out.display());
    run_command("sh", &sh(&script), &env, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "7\n");

    let err = run_command("sh", &sh("exit 3"), &env, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OnChange { result: "failed", .. }), "{err}");
    assert!(err.to_string().contains("exit status: 3"), "{err}");

    let err = run_command("/nonexistent/reload", &[], &env, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not start"), "{err}");

    // The shell and its child are both killed at the timeout.
    let started = Instant::now();
    let err = run_command("sh", &sh("sleep 30; echo late > x"), &env, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OnChange { result: "timeout", .. }), "{err}");
    assert!(err.to_string().contains("300ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn publish(store: &Store, name: &SecretName, json: &str) {
    let data = SecretData::from_json(json).unwrap();
    store.publish(name, Issued::plain(data, None), SystemTime::now());
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_new_version_is_rendered_and_an_unknown_field_keeps_the_old_file() {
    let dir = Dir::new();
    let name = SecretName::new("db");
    let store = Arc::new(Store::new([name.clone()]));
    let (audit, writer) = AuditLog::open(Some(&dir.path().join("audit.jsonl"))).unwrap();
    let status = Arc::new(Status::default());
    let stop = CancellationToken::new();
    let path = dir.path().join("db.env");
    let log = dir.path().join("changes.log");
    let task = Task {
        spec: FileSpec {
            mode: 0o640,
            on_change: vec![
                "sh".into(),
                "-c".into(),
                format!("echo \"$SIDEKEY_SECRET $SIDEKEY_VERSION\" >> {}", log.display()),
            ],
            ..spec(
                Some(&name),
                &path,
                Some(template(Some("db"), &[&name], "U={{username}}\nP={{ password }}\n")),
            )
        },
        store: store.clone(),
        audit: audit.clone(),
        status: status.clone(),
        stop: stop.clone(),
    };
    let running = tokio::spawn(task.run());
    let content = || std::fs::read_to_string(&path).unwrap_or_default();
    let changes = || std::fs::read_to_string(&log).unwrap_or_default();

    publish(&store, &name, r#"{"username":"u1","password":"p1"}"#);
    wait_for("version 1", || changes() == "db 1\n").await;
    assert_eq!(content(), "U=u1\nP=p1\n");
    assert_eq!(mode_of(&path), 0o640);

    publish(&store, &name, r#"{"username":"u2","password":"p2"}"#);
    wait_for("version 2", || changes() == "db 1\ndb 2\n").await;
    assert_eq!(content(), "U=u2\nP=p2\n");

    publish(&store, &name, r#"{"username":"u3","pass":"p3"}"#);
    wait_for("the failure", || !status.failing().is_empty()).await;
    let failing = status.failing();
    assert_eq!(failing[0].path, path.display().to_string());
    assert_eq!(failing[0].secret, "db");
    assert!(failing[0].reason.contains("\"password\""), "{}", failing[0].reason);
    assert!(!failing[0].reason.contains("p3"), "no value in the reason");
    assert_eq!(content(), "U=u2\nP=p2\n", "the old file stays");
    assert_eq!(changes(), "db 1\ndb 2\n", "on_change only after a write");

    // The next good version clears the failure.
    publish(&store, &name, r#"{"username":"u4","password":"p4"}"#);
    wait_for("version 4", || changes() == "db 1\ndb 2\ndb 4\n").await;
    assert_eq!(content(), "U=u4\nP=p4\n");
    assert!(status.failing().is_empty());

    stop.cancel();
    running.await.unwrap();
    drop(audit);
    writer.finish();
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"event\":\"render\"").count(), 3, "{audit}");
    assert!(audit.contains("\"action\":\"render\""), "{audit}");
    for value in ["p1", "p2", "p3", "p4"] {
        assert!(!audit.contains(value), "no value in the audit log");
    }
}

#[tokio::test]
async fn without_a_template_the_data_is_written_as_json() {
    let dir = Dir::new();
    let name = SecretName::new("api");
    let store = Arc::new(Store::new([name.clone()]));
    let (audit, _writer) = AuditLog::open(Some(&dir.path().join("audit.jsonl"))).unwrap();
    let stop = CancellationToken::new();
    let path = dir.path().join("api.json");
    publish(&store, &name, r#"{"b":"2","a":"1"}"#);
    let running = tokio::spawn(
        Task {
            spec: spec(Some(&name), &path, None),
            store,
            audit,
            status: Arc::new(Status::default()),
            stop: stop.clone(),
        }
        .run(),
    );
    wait_for("the file", || path.exists()).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":\"1\",\"b\":\"2\"}\n");
    assert_eq!(mode_of(&path), 0o600);
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn a_file_of_two_secrets_waits_for_both_and_follows_either() {
    let dir = Dir::new();
    let (db, api) = (SecretName::new("db"), SecretName::new("api"));
    let store = Arc::new(Store::new([db.clone(), api.clone()]));
    let (audit, _writer) = AuditLog::open(Some(&dir.path().join("audit.jsonl"))).unwrap();
    let status = Arc::new(Status::default());
    let stop = CancellationToken::new();
    let path = dir.path().join("app.env");
    let log = dir.path().join("changes.log");
    let bound = template(None, &[&db, &api], "U={{ db.username }}\nK={{ api.value | shell }}\n");
    let running = tokio::spawn(
        Task {
            spec: FileSpec {
                on_change: vec![
                    "sh".into(),
                    "-c".into(),
                    format!("echo \"$SIDEKEY_SECRET $SIDEKEY_VERSION\" >> {}", log.display()),
                ],
                ..spec(None, &path, Some(bound))
            },
            store: store.clone(),
            audit,
            status: status.clone(),
            stop: stop.clone(),
        }
        .run(),
    );
    let content = || std::fs::read_to_string(&path).unwrap_or_default();
    let changes = || std::fs::read_to_string(&log).unwrap_or_default();

    publish(&store, &db, r#"{"username":"u1","password":"p1"}"#);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!path.exists(), "not written until both secrets are served");
    assert_eq!(status.outcome(&path), Outcome::Pending);

    publish(&store, &api, r#"{"value":"it's"}"#);
    // Delivered is recorded once `on_change` has returned, so its line is in the log by then.
    wait_for("both", || status.outcome(&path) == Outcome::Delivered(vec![1, 1])).await;
    assert_eq!(changes(), "db,api 1,1\n");
    assert_eq!(content(), "U=u1\nK='it'\\''s'\n");

    publish(&store, &api, r#"{"value":"k2"}"#);
    wait_for("api's new version", || changes().ends_with("db,api 1,2\n")).await;
    assert_eq!(content(), "U=u1\nK='k2'\n");
    publish(&store, &db, r#"{"username":"u2","password":"p2"}"#);
    wait_for("db's new version", || changes().ends_with("db,api 2,2\n")).await;
    assert_eq!(content(), "U=u2\nK='k2'\n");
    assert_eq!(changes().lines().count(), 3, "one write per change: {}", changes());

    stop.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn a_file_is_given_its_owner_and_group_or_kept_when_that_is_refused() {
    let dir = Dir::new();
    let name = SecretName::new("db");
    let store = Arc::new(Store::new([name.clone()]));
    let (audit, _writer) = AuditLog::open(Some(&dir.path().join("audit.jsonl"))).unwrap();
    let status = Arc::new(Status::default());
    let stop = CancellationToken::new();
    let path = dir.path().join("db.env");
    let root = nix::unistd::geteuid().is_root();
    // As root, `nobody`; otherwise root, which the agent may not give a file to.
    let (uid, gid) = if root { (65534, 65534) } else { (0, 0) };
    let account = |id: u32| Account {
        name: id.to_string(),
        id: Some(id),
    };
    std::fs::write(&path, "OLD\n").unwrap();
    publish(&store, &name, r#"{"value":"v1"}"#);
    let running = tokio::spawn(
        Task {
            spec: FileSpec {
                owner: Some(account(uid)),
                group: Some(account(gid)),
                ..spec(
                    Some(&name),
                    &path,
                    Some(template(Some("db"), &[&name], "V={{value}}\n")),
                )
            },
            store,
            audit,
            status: status.clone(),
            stop: stop.clone(),
        }
        .run(),
    );
    wait_for("an outcome", || status.outcome(&path) != Outcome::Pending).await;
    if root {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "V=v1\n");
        assert_eq!(status.outcome(&path), Outcome::Delivered(vec![1]));
    } else {
        let Outcome::Failed { reason, retried } = status.outcome(&path) else {
            panic!("{:?}", status.outcome(&path))
        };
        assert!(!retried, "retrying does not make the agent root");
        assert!(reason.contains(&path.display().to_string()), "{reason}");
        assert!(reason.contains("owner 0, group 0"), "{reason}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "OLD\n");
    }
    stop.cancel();
    running.await.unwrap();
}
