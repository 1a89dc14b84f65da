//! `sidekey-scan` never passes a gate on input it did not read (issue 13, items 1–3).
//!
//! - A secret after a compressible filler in a zip is still found once the expansion budget is
//!   spent: what is cheap (small, stored) is read on the budget's grace.
//! - Whatever could not be read — an archive cut by a limit, a FIFO or `/dev/zero` named as
//!   the path, a file the user cannot read — makes a scan that found nothing exit 3, unless
//!   `--allow-skipped`; the pre-commit hook refuses such a commit.
//! - One NUL byte in a text file, or an `FF FE` start, does not hide a secret.
//! - A zip of nested stored zips, or a commit of large files, costs bounded memory (peak RSS
//!   measured by `getrusage` of the child).
//! - An old-style (v7) tar is read like any other.
//!
//! Archives and secrets are made at run time.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::scan_artifact::{github_token, gz, tar};
use crate::support::git::isolated;
use crate::support::{bin, finding_paths};

fn scan(dir: &Path, args: &[&str]) -> Output {
    scan_as("json", dir, args)
}

fn scan_as(format: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("sidekey-scan"))
        .args(["--no-progress", "--format", format])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The report's skipped parts, as (path, reason).
fn skipped(report: &serde_json::Value) -> Vec<(String, String)> {
    report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A zip of `members`, deflated unless `stored`.
fn zip(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, stored) in members {
        let method = if *stored {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(data.len() > u32::MAX as usize / 2);
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn a_secret_after_a_filler_that_spends_the_budget_is_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let secret = github_token(1);
    let filler = vec![0u8; 100 * 1024 * 1024];
    let env = format!("GITHUB_TOKEN={secret}\n");
    let bytes = zip(&[
        ("filler.bin", &filler, false),
        ("app.env", env.as_bytes(), false),
        ("stored.env", env.as_bytes(), true),
    ]);
    assert!(bytes.len() < 200 * 1024, "a small zip: {} bytes", bytes.len());
    std::fs::write(dir.path().join("bomb.zip"), &bytes).unwrap();

    let out = scan(dir.path(), &["--max-expanded-mib", "64", "bomb.zip"]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(1), "found → 1: {}", stderr(&out));
    assert_eq!(finding_paths(&r), vec!["bomb.zip!app.env", "bomb.zip!stored.env"]);
    // The filler's cut is reported, never silent.
    let cut = skipped(&r);
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(cut[0].0, "bomb.zip!filler.bin");
    assert!(cut[0].1.contains("expanded past 64 MiB"), "{cut:?}");
}

#[test]
fn a_scan_that_could_not_read_part_of_its_input_exits_3_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    // A tgz whose stream holds the filler before the secret: nothing after the cut can be
    // read without expanding it, so the scan is incomplete.
    let env = format!("GITHUB_TOKEN={}\n", github_token(2));
    let filler = vec![0u8; 100 * 1024 * 1024];
    let tgz = gz(&tar(&[("filler.bin", &filler), ("app.env", env.as_bytes())]));
    std::fs::write(dir.path().join("bomb.tgz"), tgz).unwrap();

    let out = scan(dir.path(), &["--max-expanded-mib", "64", "bomb.tgz"]);
    let r = report(&out);
    assert!(finding_paths(&r).is_empty());
    assert_eq!(out.status.code(), Some(3), "incomplete → 3: {}", stderr(&out));
    assert!(stderr(&out).contains("incomplete: 1 part(s)"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--allow-skipped"), "{}", stderr(&out));
    assert!(stderr(&out).contains("skipped bomb.tgz"), "{}", stderr(&out));

    let out = scan(dir.path(), &["--max-expanded-mib", "64", "--allow-skipped", "bomb.tgz"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(skipped(&report(&out)).len(), 1, "still reported");

    // The same in SARIF: the invocation is not successful and says why.
    let out = scan_as("sarif", dir.path(), &["--max-expanded-mib", "64", "bomb.tgz"]);
    assert_eq!(out.status.code(), Some(3));
    let sarif = report(&out);
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false, "{invocation}");
    let note = &invocation["toolExecutionNotifications"][0];
    assert_eq!(note["level"], "warning");
    assert_eq!(
        note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "bomb.tgz"
    );

    // A config that leaves the path out leaves its skipped parts out too.
    std::fs::write(
        dir.path().join("scan.toml"),
        "[extend]\nuseDefault = true\n[allowlist]\npaths = ['''^bomb\\.tgz''']\n",
    )
    .unwrap();
    let out = scan(
        dir.path(),
        &["--max-expanded-mib", "64", "--config", "scan.toml", "bomb.tgz"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn fifos_devices_and_unreadable_files_are_skipped_not_passed() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    for named in [fifo.to_str().unwrap(), "/dev/zero"] {
        let out = scan(dir.path(), &[named]);
        assert_eq!(out.status.code(), Some(3), "{named}: {}", stderr(&out));
        let cut = skipped(&report(&out));
        assert_eq!(cut.len(), 1, "{cut:?}");
        assert!(cut[0].1.contains("not a regular file"), "{cut:?}");
    }
    // Under --artifact a FIFO is an error before the scan, and never blocks.
    let out = scan(dir.path(), &["--artifact", fifo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a regular file (a FIFO)"), "{}", stderr(&out));

    // A file its user cannot read (the scanner runs as `nobody`, the file is root's, 0600).
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("public.txt"), "nothing here\n").unwrap();
    let private = tree.join("private.env");
    std::fs::write(&private, format!("GITHUB_TOKEN={}\n", github_token(3))).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    for p in [dir.path(), tree.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(bin("sidekey-scan"))
        .args(["--no-progress", "--format", "json"])
        .arg(&tree)
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let cut = skipped(&report(&out));
    assert!(
        cut.iter()
            .any(|(p, r)| p.ends_with("private.env") && r.contains("Permission denied")),
        "{cut:?}"
    );
}

#[test]
fn a_nul_byte_or_a_utf16_bom_does_not_hide_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = github_token(4);
    // One NUL byte in the first 8 KiB.
    std::fs::write(
        dir.path().join("nul.env"),
        format!("# config\0\nGITHUB_TOKEN={secret}\n"),
    )
    .unwrap();
    // A UTF-8 file that merely starts with FF FE.
    let mut bom = vec![0xff, 0xfe];
    bom.extend_from_slice(format!("GITHUB_TOKEN={secret}\n").as_bytes());
    std::fs::write(dir.path().join("bom.env"), bom).unwrap();
    // Real UTF-16 is still decoded.
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            format!("GITHUB_TOKEN={secret}\r\n")
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    std::fs::write(dir.path().join("utf16.env"), utf16).unwrap();
    // A binary file (an ELF header) with the secret inside.
    let mut elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00".to_vec();
    elf.extend_from_slice(&[0u8; 4096]);
    elf.extend_from_slice(format!("{secret}\0").as_bytes());
    std::fs::write(dir.path().join("app.bin"), elf).unwrap();

    let out = scan(dir.path(), &["."]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mut paths = finding_paths(&report(&out));
    paths.dedup();
    assert_eq!(paths, vec!["app.bin", "bom.env", "nul.env", "utf16.env"]);
}

#[test]
fn old_v7_tars_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.env"),
        format!("GITHUB_TOKEN={}\n", github_token(5)),
    )
    .unwrap();
    let made = Command::new("tar")
        .args(["--format=v7", "-cf", "old.tar", "app.env"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(made.success());
    let bytes = std::fs::read(dir.path().join("old.tar")).unwrap();
    assert_ne!(&bytes[257..262], b"ustar", "an old header, no magic");
    std::fs::remove_file(dir.path().join("app.env")).unwrap();

    for args in [&["old.tar"][..], &["--artifact", "old.tar"]] {
        let out = scan(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert_eq!(finding_paths(&report(&out)), vec!["old.tar!app.env"]);
    }
}

#[test]
fn the_pre_commit_hook_refuses_a_commit_it_could_not_fully_scan() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let git = |args: &[&str]| {
        isolated("git", repo)
            .args(args)
            .env("SIDEKEY_SCAN", bin("sidekey-scan"))
            .output()
            .unwrap()
    };
    assert!(git(&["init", "-q", "-b", "main"]).status.success());
    let install = Command::new(bin("sidekey-scan"))
        .arg("install-hook")
        .current_dir(repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(install.status.success(), "{}", stderr(&install));
    // A truncated tgz: the part after the break cannot be read.
    let env = format!("GITHUB_TOKEN={}\n", github_token(6));
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let whole = gz(&tar(&[("noise.bin", &noise), ("app.env", env.as_bytes())]));
    std::fs::write(repo.join("release.tgz"), &whole[..whole.len() / 2]).unwrap();
    assert!(git(&["add", "release.tgz"]).status.success());
    let commit = git(&["commit", "-q", "-m", "add release"]);
    assert!(!commit.status.success(), "the hook lets an unreadable archive through");
    let said = stderr(&commit);
    assert!(said.contains("incomplete"), "{said}");
    assert!(said.contains("release.tgz"), "{said}");
}

/// Runs `sidekey-scan ARGS` in `dir`; answers (exit code, peak RSS in MiB).
fn peak_rss(dir: &Path, args: &[&str]) -> (i32, u64) {
    let args: Vec<&str> = ["--no-progress"].into_iter().chain(args.iter().copied()).collect();
    let (out, rss) = crate::support::with_peak_rss(&bin("sidekey-scan"), &args, dir);
    (out.status.code().unwrap_or(-1), rss >> 20)
}

#[test]
fn nested_stored_zips_cost_bounded_memory() {
    // Eight stored zips, each holding the one before, around 64 MiB of zeros and a secret;
    // the outermost is deflated (small on disk). Each level held in memory, as before, would
    // be 8 × 64 MiB.
    let dir = tempfile::tempdir().unwrap();
    let env = format!("GITHUB_TOKEN={}\n", github_token(7));
    let mut level = zip(&[
        ("zeros.bin", &vec![0u8; 64 * 1024 * 1024], true),
        ("app.env", env.as_bytes(), true),
    ]);
    for i in 1..8 {
        level = zip(&[(&format!("l{}.zip", i - 1), &level, i < 7)]);
    }
    assert!(level.len() < 2 * 1024 * 1024, "{} bytes", level.len());
    std::fs::write(dir.path().join("nested.zip"), &level).unwrap();
    // Two copies, scanned at once by the parallel walk.
    std::fs::write(dir.path().join("copy.zip"), &level).unwrap();
    drop(level);

    let (code, mib) = peak_rss(dir.path(), &["."]);
    assert_eq!(code, 1, "the secret in the innermost zip is found");
    eprintln!("nested stored zips: peak RSS {mib} MiB");
    assert!(mib < 200, "peak RSS {mib} MiB for two 8-level nested zips");
}

#[test]
fn a_commit_of_large_files_is_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let git = |args: &[&str]| {
        let out = isolated("git", repo).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    };
    git(&["init", "-q", "-b", "main"]);
    // Four 48 MiB text files; held together they would be 192 MiB.
    let line = b"lorem ipsum dolor sit amet, consectetur adipiscing elit\n";
    let big: Vec<u8> = line.iter().copied().cycle().take(48 * 1024 * 1024).collect();
    for i in 0..4 {
        let mut text = big.clone();
        text.extend_from_slice(format!("GITHUB_TOKEN={}\n", github_token(10 + i)).as_bytes());
        std::fs::write(repo.join(format!("big{i}.txt")), text).unwrap();
    }
    drop(big);
    git(&["add", "."]);
    let (code, mib) = peak_rss(repo, &["--staged"]);
    assert_eq!(code, 1, "each file's secret is found");
    eprintln!("--staged with 4 × 48 MiB: peak RSS {mib} MiB");
    assert!(mib < 150, "peak RSS {mib} MiB for a 192 MiB commit");
}
