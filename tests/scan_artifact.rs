//! `sidekey-scan --artifact` and archives met while scanning paths: members reported as
//! `ARCHIVE!MEMBER` (nested `A!B!C`), `docker save` tarballs and OCI image layouts read layer by
//! layer (a secret a later layer deletes is still found), a 200 MB member costs bounded memory,
//! and broken archives and zip bombs are reported as skipped while the rest is still scanned.
//! Archives are built at run time, with secrets made at run time.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use rand::SeedableRng;
use serde_json::{json, Value};
use sha2::Digest;
use sidekey_scanner::rules::examples::expand;

use crate::support::{bin, finding_paths};

/// A checksum-valid GitHub token made at run time.
pub(crate) fn github_token(seed: u64) -> String {
    expand("{github:ghp}", &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap()
}

/// Runs `sidekey-scan ARGS --format json` in `dir`; answers the exit code, the report and stderr.
fn scan(dir: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(bin("sidekey-scan"))
        .args(args)
        .args(["--format", "json"])
        .current_dir(dir)
        .output()
        .unwrap();
    report(out)
}

fn report(out: Output) -> (Option<i32>, Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); exit {:?}; stderr:\n{stderr}", out.status.code()));
    (out.status.code(), report, stderr)
}

/// The reason reported for skipping `path`, if it was.
fn skipped_reason(report: &Value, path: &str) -> Option<String> {
    report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == path)
        .map(|s| s["reason"].as_str().unwrap().to_owned())
}

pub(crate) fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn write(dir: &Path, path: &str, bytes: &[u8]) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Runs a Python snippet (standard library only) with `args` as `sys.argv[1:]`.
fn python(script: &str, args: &[&str]) -> Output {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn jar_members_are_reported_as_archive_bang_member() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token(101);
    let jar = zip(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
        (
            "BOOT-INF/classes/application.properties",
            format!("server.port=8080\ngithub.token={token}\n").as_bytes(),
        ),
    ]);
    write(dir.path(), "dist/app.jar", &jar);

    let (code, report, stderr) = scan(dir.path(), &["--artifact", "dist/app.jar"]);
    assert_eq!(code, Some(1), "{stderr}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(
        findings[0]["path"],
        "dist/app.jar!BOOT-INF/classes/application.properties"
    );
    assert_eq!(findings[0]["line"], 2);
    assert_eq!(findings[0]["ruleId"], "github-pat");

    // Scanning paths opens archives too.
    let (code, report, _) = scan(dir.path(), &["dist"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        finding_paths(&report),
        vec!["dist/app.jar!BOOT-INF/classes/application.properties"]
    );

    // An artifact that is no archive is a usage error.
    write(dir.path(), "notes.txt", b"just text\n");
    let out = Command::new(bin("sidekey-scan"))
        .args(["--artifact", "notes.txt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt"));
}

#[test]
fn nested_archives_are_reported_as_a_bang_path() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token(102);
    let inner = zip(&[("config/prod.env", format!("GITHUB_TOKEN={token}\n").as_bytes())]);
    let bundle = gz(&tar(&[("README.md", b"# bundle\n"), ("inner.zip", &inner)]));
    write(dir.path(), "bundle.tgz", &bundle);
    // The same bundle zstd-compressed, as `tar --zstd` writes it.
    let zst = zstd::stream::encode_all(&tar(&[("inner.zip", &inner)])[..], 3).unwrap();
    write(dir.path(), "bundle.tar.zst", &zst);

    let (code, report, stderr) = scan(
        dir.path(),
        &["--artifact", "bundle.tgz", "--artifact", "bundle.tar.zst"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        finding_paths(&report),
        vec![
            "bundle.tar.zst!inner.zip!config/prod.env",
            "bundle.tgz!inner.zip!config/prod.env"
        ]
    );
    assert_eq!(report["skipped"], json!([]));
}

/// A `docker save` image whose second layer deletes the first layer's `app/.env`.
fn layers(token: &str) -> (Vec<u8>, Vec<u8>) {
    let added = tar(&[
        ("app/.env", format!("GITHUB_TOKEN={token}\n").as_bytes()),
        ("app/main.py", b"print('hello')\n"),
    ]);
    let deleted = tar(&[("app/.wh..env", b"")]);
    (added, deleted)
}

#[test]
fn docker_save_layers_are_scanned_one_by_one_so_deleted_secrets_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token(103);
    let (added, deleted) = layers(&token);
    let (l1, l2) = (sha256(&added), sha256(&deleted));

    // The legacy layout: <id>/layer.tar and manifest.json.
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{l1}"), format!("sha256:{l2}")]}}).to_string();
    let config_id = sha256(config.as_bytes());
    let manifest = json!([{"Config": format!("{config_id}.json"), "RepoTags": ["app:1"],
                           "Layers": [format!("{l1}/layer.tar"), format!("{l2}/layer.tar")]}])
    .to_string();
    let legacy = tar(&[
        (&format!("{l1}/VERSION"), b"1.0"),
        (&format!("{l1}/layer.tar"), &added),
        (&format!("{l2}/VERSION"), b"1.0"),
        (&format!("{l2}/layer.tar"), &deleted),
        (&format!("{config_id}.json"), config.as_bytes()),
        ("manifest.json", manifest.as_bytes()),
    ]);
    write(dir.path(), "legacy.tar", &legacy);

    // The OCI layout `docker save` writes since Docker 25: blobs/sha256/<digest>.
    let oci_manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_id}"), "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{l1}"), "size": added.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{l2}"), "size": deleted.len()}]})
    .to_string();
    let manifest_id = sha256(oci_manifest.as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{manifest_id}"), "size": oci_manifest.len()}]})
    .to_string();
    let oci = tar(&[
        (&format!("blobs/sha256/{l1}"), &added),
        (&format!("blobs/sha256/{l2}"), &deleted),
        (&format!("blobs/sha256/{config_id}"), config.as_bytes()),
        (&format!("blobs/sha256/{manifest_id}"), oci_manifest.as_bytes()),
        ("index.json", index.as_bytes()),
        ("manifest.json", manifest.replace("/layer.tar", "").as_bytes()),
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
    ]);
    write(dir.path(), "oci.tar", &oci);

    let (code, report, stderr) = scan(dir.path(), &["--artifact", "legacy.tar", "--artifact", "oci.tar"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        finding_paths(&report),
        vec![
            format!("legacy.tar!{l1}/layer.tar!app/.env"),
            format!("oci.tar!blobs/sha256/{l1}!app/.env"),
        ],
        "{report:#}"
    );
    assert_eq!(report["skipped"], json!([]));
}

#[test]
fn an_oci_image_layout_directory_is_scanned_layer_by_layer() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token(104);
    let (added, deleted) = layers(&token);
    let (added, deleted) = (gz(&added), gz(&deleted));
    let (l1, l2) = (sha256(&added), sha256(&deleted));
    let config = json!({"architecture": "amd64", "os": "linux"}).to_string();
    let config_id = sha256(config.as_bytes());
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_id}"), "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{l1}"), "size": added.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{l2}"), "size": deleted.len()}]})
    .to_string();
    let manifest_id = sha256(manifest.as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{manifest_id}"), "size": manifest.len()}]})
    .to_string();
    write(dir.path(), "image/oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    write(dir.path(), "image/index.json", index.as_bytes());
    write(
        dir.path(),
        &format!("image/blobs/sha256/{manifest_id}"),
        manifest.as_bytes(),
    );
    write(
        dir.path(),
        &format!("image/blobs/sha256/{config_id}"),
        config.as_bytes(),
    );
    write(dir.path(), &format!("image/blobs/sha256/{l1}"), &added);
    write(dir.path(), &format!("image/blobs/sha256/{l2}"), &deleted);

    let expected = vec![format!("image/blobs/sha256/{l1}!app/.env")];
    for args in [&["--artifact", "image"][..], &["image"][..]] {
        let (code, report, stderr) = scan(dir.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(finding_paths(&report), expected, "{args:?}: {report:#}");
        assert_eq!(report["skipped"], json!([]), "{args:?}");
    }
}

/// Runs `sidekey-scan ARGS --format json` under Python, which reports the child's peak RSS.
fn scan_measured(dir: &Path, args: &[&str]) -> (Option<i32>, Value, String, u64) {
    let args: Vec<&str> = args.iter().copied().chain(["--format", "json"]).collect();
    let (out, rss) = crate::support::with_peak_rss(&bin("sidekey-scan"), &args, dir);
    let (code, report, stderr) = report(out);
    (code, report, stderr, rss)
}

#[test]
fn a_200_mb_member_costs_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (github_token(105), github_token(106));
    // Python's zlib makes 200 MB of zeros quickly; the members follow the big one.
    python(
        "import sys, tarfile, zipfile, io\n\
         path, secret = sys.argv[1], sys.argv[2]\n\
         chunk = bytes(1 << 20)\n\
         with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:\n\
         \x20   with z.open('data/zeros.bin', 'w') as f:\n\
         \x20       for _ in range(200): f.write(chunk)\n\
         \x20   z.writestr('config/secret.env', 'GITHUB_TOKEN=%s\\n' % secret)\n",
        &[dir.path().join("big.zip").to_str().unwrap(), &a],
    );
    python(
        "import sys, tarfile, io\n\
         path, secret = sys.argv[1], sys.argv[2]\n\
         class Zeros(io.RawIOBase):\n\
         \x20   def __init__(self, n): self.left = n\n\
         \x20   def readable(self): return True\n\
         \x20   def readinto(self, b):\n\
         \x20       n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n\n\
         with tarfile.open(path, 'w:gz', compresslevel=1) as t:\n\
         \x20   info = tarfile.TarInfo('data/zeros.bin'); info.size = 200 << 20\n\
         \x20   t.addfile(info, io.BufferedReader(Zeros(info.size)))\n\
         \x20   text = ('GITHUB_TOKEN=%s\\n' % secret).encode()\n\
         \x20   info = tarfile.TarInfo('config/secret.env'); info.size = len(text)\n\
         \x20   t.addfile(info, io.BytesIO(text))\n",
        &[dir.path().join("big.tgz").to_str().unwrap(), &b],
    );

    let (code, report, stderr, rss) = scan_measured(dir.path(), &["--artifact", "big.zip", "--artifact", "big.tgz"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        finding_paths(&report),
        vec!["big.tgz!config/secret.env", "big.zip!config/secret.env"],
        "{report:#}"
    );
    assert_eq!(report["skipped"], json!([]));
    eprintln!("sidekey-scan peak RSS on two 200 MB members: {} MiB", rss >> 20);
    assert!(rss < 256 << 20, "peak RSS {} MiB", rss >> 20);
}

#[test]
fn broken_archives_and_zip_bombs_are_skipped_and_the_rest_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (github_token(107), github_token(108));

    // A tgz cut short inside its second member: the first member is still scanned.
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let whole = gz(&tar(&[
        ("first.env", format!("GITHUB_TOKEN={a}\n").as_bytes()),
        ("noise.bin", &noise),
    ]));
    write(dir.path(), "broken.tgz", &whole[..whole.len() / 2]);

    // 1 GiB of text in 1 MB of zip, then a secret.
    python(
        "import sys, zipfile\n\
         path, secret = sys.argv[1], sys.argv[2]\n\
         chunk = b'nothing to see.\\n' * (1 << 16)\n\
         with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:\n\
         \x20   with z.open('bomb.txt', 'w') as f:\n\
         \x20       for _ in range(1024): f.write(chunk)\n\
         \x20   z.writestr('secret.env', 'GITHUB_TOKEN=%s\\n' % secret)\n",
        &[dir.path().join("bomb.zip").to_str().unwrap(), &b],
    );
    write(dir.path(), "corrupt.zip", b"PK\x03\x04 not really a zip");

    let started = std::time::Instant::now();
    let (code, report, stderr) = scan(dir.path(), &["."]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        finding_paths(&report),
        vec!["bomb.zip!secret.env", "broken.tgz!first.env"],
        "{report:#}"
    );
    let truncated = skipped_reason(&report, "broken.tgz").unwrap_or_else(|| panic!("{report:#}"));
    assert!(truncated.contains("truncated"), "{truncated}");
    let bomb = skipped_reason(&report, "bomb.zip!bomb.txt").unwrap_or_else(|| panic!("{report:#}"));
    assert!(bomb.contains("1 GiB") && bomb.contains("256 MiB"), "{bomb}");
    let corrupt = skipped_reason(&report, "corrupt.zip").unwrap_or_else(|| panic!("{report:#}"));
    assert!(corrupt.contains("zip"), "{corrupt}");
    assert!(stderr.contains("skipped broken.tgz"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // With a member limit past the bomb, the expansion budget cuts it (reported once), and
    // the small member after it is still read on the budget's grace.
    let (code, report, stderr) = scan(
        dir.path(),
        &[
            "--artifact",
            "bomb.zip",
            "--max-member-mib",
            "2048",
            "--max-expanded-mib",
            "1",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(finding_paths(&report), vec!["bomb.zip!secret.env"], "{report:#}");
    let cut = skipped_reason(&report, "bomb.zip!bomb.txt").unwrap_or_else(|| panic!("{report:#}"));
    assert!(cut.contains("expanded past 1 MiB in total"), "{cut}");
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1, "{report:#}");
}
