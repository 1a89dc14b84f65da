#!/usr/bin/env bash
# sidekey-scan benchmark: throughput against ripgrep, ripsecrets and detect-secrets, `--staged`
# latency, and `--git` history time and memory against `git cat-file --batch-all-objects`.
#
#   bench/scan.sh         build sidekey-scan (release), install what is missing, then
#                         1. throughput: the same directories (≥ 400 MB of real source) scanned by
#                            sidekey-scan and by ripgrep searching all rules' keywords; ripsecrets
#                            and detect-secrets on subsets (they are slow), with sidekey-scan and
#                            ripgrep on the same subsets for like-for-like ratios
#                         2. `--staged`: 10 changed files in a 200-file repository, N runs, p50/p95/max
#                         3. `--git`: a real repository's full history vs `git cat-file
#                            --batch-all-objects --batch`, and peak RSS on the full history and on
#                            its first quarter and half
#                         prints markdown tables and writes bench/SCAN_RESULTS.md
#
# Knobs:
#   BENCH_CORPUS=DIR:DIR…      the throughput corpus (default: the first of ~/.cargo/registry/src,
#                              /usr/include, rust-src, .stack/venv site-packages, the toolchain's
#                              share/doc that together hold ≥ BENCH_CORPUS_MB of text)
#   BENCH_CORPUS_MB=400        least corpus size (MB = 10^6 bytes)
#   BENCH_RIPSECRETS_MB=40     ripsecrets subset; 0 = the whole corpus
#   BENCH_DETECT_SECRETS_MB=20 detect-secrets subset; 0 = skip detect-secrets
#   BENCH_REPEAT=2             timed runs per full-corpus point (the best is reported)
#   BENCH_STAGED_RUNS=50       `--staged` runs
#   BENCH_GIT_REPO=PATH        repository for the history benchmark (bare or not; e.g. a mirror);
#                              unset or missing: that part is skipped, saying so
#   BENCH_SCAN_BIN=PATH        a sidekey-scan binary to use instead of building one
#   BENCH_KEEP=1               keep the temp dir (reports, outputs, logs)
# Tools are installed once into .stack/ (git-ignored): ripgrep and ripsecrets in
# .stack/bench-tools (cargo install, pinned), detect-secrets in .stack/scan-bench-venv (pip,
# pinned). Nothing is fetched over the network except those installs; all files are local.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD TOOLS=$ROOT/.stack/bench-tools VENV=$ROOT/.stack/scan-bench-venv
RG_VERSION=15.2.0 RIPSECRETS_VERSION=0.1.11 DETECT_SECRETS_VERSION=1.5.0
CORPUS_MB=${BENCH_CORPUS_MB:-400} RIPSECRETS_MB=${BENCH_RIPSECRETS_MB:-40}
DETECT_SECRETS_MB=${BENCH_DETECT_SECRETS_MB:-20} REPEAT=${BENCH_REPEAT:-2} STAGED_RUNS=${BENCH_STAGED_RUNS:-50}
say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
T0=$SECONDS
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg) # other work on the box skews every number: recorded in the report
for v in CORPUS_MB:BENCH_CORPUS_MB RIPSECRETS_MB:BENCH_RIPSECRETS_MB DETECT_SECRETS_MB:BENCH_DETECT_SECRETS_MB \
  REPEAT:BENCH_REPEAT STAGED_RUNS:BENCH_STAGED_RUNS; do
  name=${v%%:*}; [[ ${!name} =~ ^[0-9]+$ ]] || die "${v#*:} must be a whole number, not '${!name}'"
done
((REPEAT >= 1 && STAGED_RUNS >= 1)) || die "BENCH_REPEAT and BENCH_STAGED_RUNS must be at least 1"
for c in python3 git cargo; do command -v "$c" >/dev/null || die "$c is not installed"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is missing: apt-get install time"
python3 -c 'import tomllib' 2>/dev/null || die "python3 ≥ 3.11 is needed (tomllib)"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/sidekey-scan-bench.XXXXXX")
cleanup() {
  local rc=$?
  set +e; trap '' INT TERM HUP
  if [[ $rc -ne 0 ]]; then for f in "$DIR"/*.err; do [[ -s $f ]] && { say "--- tail $f"; tail -n 8 "$f" >&2; }; done; fi
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $DIR"; else rm -rf "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP

# ------------------------------------------------------------ helpers (python: walking, timing, stats, report)
PYH=$DIR/bench.py
cat >"$PYH" <<'PYEOF'
"""bench/scan.sh helpers. Each subcommand prints what the shell needs; results go to JSON files."""
import json, math, os, secrets, stat, statistics, string, subprocess, sys, time, tomllib

SNIFF = 8192  # sidekey-scan and ripgrep decide "binary" on a NUL near the start


def files(root):
    """Regular files under root as sidekey-scan walks them: no symlinks followed, `.git` skipped."""
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != ".git")
        for name in sorted(names):
            if name == ".git":
                continue
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield p, st.st_size


def is_text(path):
    try:
        with open(path, "rb") as fh:
            return b"\0" not in fh.read(SNIFF)
    except OSError:
        return False


def stats(paths):
    n = size = text = binary = 0
    for root in paths:
        items = [(root, os.path.getsize(root))] if os.path.isfile(root) else files(root)
        for p, s in items:
            n += 1
            size += s
            if is_text(p):
                text += s
            else:
                binary += 1
    return {"files": n, "bytes": size, "text_bytes": text, "binary_files": binary}


def keywords(out, *files):
    rules = [r for f in files for r in tomllib.load(open(f, "rb")).get("rules", [])]
    kws = sorted({k.lower() for r in rules for k in r.get("keywords") or []})
    with open(out, "w") as fh:
        fh.write("\n".join(kws) + "\n")
    print(len(rules), len(kws))


def corpus(out, min_mb, mode, *dirs):
    """mode auto: candidates in order until their text reaches min_mb; fixed: all of dirs."""
    chosen, real, per = [], [], []
    tot = {"files": 0, "bytes": 0, "text_bytes": 0, "binary_files": 0}
    for d in dirs:
        if not os.path.isdir(d):
            continue
        r = os.path.realpath(d)
        if any(r == c or r.startswith(c + "/") or c.startswith(r + "/") for c in real):
            continue  # nested in (or containing) a directory already chosen
        s = stats([d])
        if s["files"] == 0:
            continue
        chosen.append(d); real.append(r); per.append(s)
        for k in tot:
            tot[k] += s[k]
        if mode == "auto" and tot["text_bytes"] >= float(min_mb) * 1e6:
            break
    json.dump({"dirs": chosen, "per_dir": per, **tot}, open(out, "w"))
    print("\n".join(chosen))


def subset(out, mb, *dirs):
    """A deterministic prefix of the corpus (whole subdirectories in name order) of about mb MB."""
    need, picked, total = float(mb) * 1e6, [], 0

    def size(p):
        return sum(s for _, s in files(p))

    def visit(d):
        nonlocal total
        for name in sorted(os.listdir(d)):
            if total >= need:
                return
            p = os.path.join(d, name)
            if name == ".git" or os.path.islink(p):
                continue
            if os.path.isdir(p):
                s = size(p)
                if total + s <= need * 1.1:
                    picked.append(p); total += s
                else:
                    visit(p)
            elif os.path.isfile(p):
                picked.append(p); total += os.path.getsize(p)

    for d in dirs:
        if total < need:
            visit(d)
    common = os.path.commonpath(picked) if picked else "/"
    if common in picked:
        common = os.path.dirname(common)
    rel = [os.path.relpath(p, common) for p in picked]
    json.dump({"paths": picked, "cwd": common, "rel": rel, **stats(picked)}, open(out, "w"))


def children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return kids


def hwm(pid):
    """(comm, VmHWM in KiB) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/comm") as fh:
            comm = fh.read().strip()
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return comm, int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def measure(out, key, ok_rcs, stdout, cwd, sample, *cmd):
    """Runs cmd under /usr/bin/time -f '%e %M %U %S' (wall s, peak RSS KiB of the process and
    the children it waited for, user and system CPU s). With sample=1 also polls each descendant's VmHWM every 20 ms, so a
    process's own peak is told apart from its git children's."""
    tfile = out + ".time"
    err = os.path.join(os.path.dirname(out), key + ".err")
    load = open("/proc/loadavg").read().split()[0]
    peaks = {}
    with open(stdout, "wb") as so, open(err, "wb") as se:
        p = subprocess.Popen(["/usr/bin/time", "-f", "%e %M %U %S", "-o", tfile, *cmd], stdout=so, stderr=se, cwd=cwd)
        while sample == "1" and p.poll() is None:
            todo = children(p.pid)
            while todo:
                pid = todo.pop()
                got = hwm(pid)
                if got and got[0] != "time":  # a fork of /usr/bin/time before it execs the command
                    comm = got[0] if got[0] != "git" else "git " + git_verb(pid)
                    peaks[comm] = max(peaks.get(comm, 0), got[1])
                todo += children(pid)
            time.sleep(0.02)
        rc = p.wait()
    lines = [l for l in open(tfile).read().splitlines() if l.strip()]
    try:
        wall, rss, user, system = lines[-1].split()
        wall, rss, cpu = float(wall), int(rss), float(user) + float(system)
    except (IndexError, ValueError):
        wall, rss, cpu = None, None, None
    rec = {"key": key, "rc": rc, "wall": wall, "rss_kb": rss, "cpu": cpu, "peaks_kb": peaks, "load1": float(load),
           "cmd": " ".join(cmd), "time_note": " ".join(lines[:-1])}
    with open(out, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    ok = {int(x) for x in ok_rcs.split(",")}
    if rc not in ok:
        tail = open(err, "rb").read()[-3000:].decode("utf-8", "replace")
        print(f"{key}: exit {rc} (expected {ok_rcs}); {' '.join(lines[:-1])}\n{tail}", file=sys.stderr)
        sys.exit(3)
    print(f"{wall} s, {rss} KiB, load {load}" + (f", peaks {peaks}" if peaks else ""))


def git_verb(pid):
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        verbs = [a.decode() for a in args[1:] if a and not a.startswith(b"-") and b"=" not in a]
        return verbs[0] if verbs else "?"
    except OSError:
        return "?"


def staged_setup(repo, nfiles, nchanged, *dirs):
    """A repository of nfiles real source files (copied from dirs), committed; nchanged of them
    then get new lines, one a freshly generated secret-like assignment, and are staged."""
    nfiles, nchanged = int(nfiles), int(nchanged)
    exts = {".rs", ".py", ".c", ".h", ".js", ".ts", ".go", ".java", ".rb", ".toml", ".md", ".json", ".yaml", ".yml", ".sh"}
    cands = []
    for root in dirs:
        for p, s in files(root):
            if 1024 <= s <= 40 * 1024 and os.path.splitext(p)[1] in exts and is_text(p):
                cands.append(p)
            if len(cands) >= 20000:
                break
    if len(cands) < nfiles + nchanged:
        sys.exit(f"only {len(cands)} source files of 1-40 KiB in the corpus; need {nfiles + nchanged}")
    step = len(cands) / (nfiles + nchanged)
    pick = [cands[int(i * step)] for i in range(nfiles + nchanged)]
    donors, pick = pick[nfiles:], pick[:nfiles]
    paths = []
    for i, src in enumerate(pick):
        rel = os.path.join(f"pkg{i // 20:02d}", f"{i:03d}-{os.path.basename(src)}")
        os.makedirs(os.path.join(repo, os.path.dirname(rel)), exist_ok=True)
        with open(src, "rb") as a, open(os.path.join(repo, rel), "wb") as b:
            b.write(a.read())
        paths.append(rel)
    git = lambda *a: subprocess.run(["git", "-C", repo, *a], check=True, stdout=subprocess.DEVNULL)
    git("init", "-q", "-b", "main")
    git("config", "user.email", "bench@example.invalid"); git("config", "user.name", "bench")
    git("config", "commit.gpgsign", "false")
    git("add", "-A"); git("commit", "-q", "-m", "import")
    alnum = string.ascii_letters + string.digits
    value = "".join(secrets.choice(alnum) for _ in range(32))  # generated now: no key-shaped literal in this file
    changed = [paths[int(i * nfiles / nchanged)] for i in range(nchanged)]
    for i, rel in enumerate(changed):
        lines = open(donors[i], encoding="utf-8", errors="replace").read().splitlines()[:40]
        with open(os.path.join(repo, rel), "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")
            if i == 0:
                fh.write(f'api_token = "{value}"\n')
    git("add", "-A")
    staged = subprocess.run(["git", "-C", repo, "diff", "--cached", "--name-only"], check=True,
                            capture_output=True, text=True).stdout.split()
    if len(staged) != nchanged:
        sys.exit(f"expected {nchanged} staged files, git shows {len(staged)}")
    print(changed[0])


def staged_run(out, repo, runs, secret_path, *cmd):
    """cmd run `runs` times in repo after 3 warm-ups; wall (ms) percentiles, process start included."""
    runs = int(runs)
    for _ in range(3):
        r = subprocess.run(list(cmd), cwd=repo, capture_output=True, text=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(list(cmd), cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    pct = lambda q: times[max(0, math.ceil(q * len(times)) - 1)]  # nearest rank
    rec = {"cmd": " ".join(cmd), "runs": runs, "p50": statistics.median(times), "p95": pct(0.95), "max": times[-1],
           "min": times[0], "rc": r.returncode, "out": r.stdout[-2000:], "err": r.stderr[-2000:],
           "load1": float(open("/proc/loadavg").read().split()[0])}
    with open(out, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    print(f"p50 {rec['p50']:.1f} ms, p95 {rec['p95']:.1f} ms, max {rec['max']:.1f} ms (exit {r.returncode})")


def blobs(gitdir, rev, out):
    """Commits reachable from rev, and the distinct blobs (count, bytes) they reach."""
    env = dict(os.environ, GIT_DIR=gitdir)
    revs = ["--all"] if rev == "--all" else [rev]
    commits = int(subprocess.run(["git", "rev-list", "--count", *revs], env=env, check=True,
                                 capture_output=True, text=True).stdout)
    rl = subprocess.Popen(["git", "rev-list", "--objects", *revs], env=env, stdout=subprocess.PIPE)
    cf = subprocess.run(["git", "cat-file", "--batch-check=%(objecttype) %(objectsize)"], env=env,
                        capture_output=True, check=True,
                        input=b"".join(l.split(b" ", 1)[0].rstrip(b"\n") + b"\n" for l in rl.stdout))
    rl.wait()
    n = size = 0
    for line in cf.stdout.splitlines():
        kind, s = line.split()
        if kind == b"blob":
            n += 1; size += int(s)
    json.dump({"commits": commits, "blobs": n, "blob_bytes": size}, open(out, "w"))
    print(f"{commits} commits, {n} blobs, {size / 1e6:.1f} MB")


def count(kind, path):
    """Findings/matches in a tool's output."""
    if kind == "sidekey":
        d = json.load(open(path))
        print(len(d["findings"]), len(d["skipped"]))
    elif kind == "detect-secrets":
        d = json.load(open(path))
        print(sum(len(v) for v in d["results"].values()), len(d["results"]))
    elif kind == "rg":
        m = {"matches": 0, "files searched": 0, "bytes searched": 0}
        for line in open(path, errors="replace"):
            parts = line.strip().split(" ", 1)
            if len(parts) == 2 and parts[1] in m and parts[0].isdigit():
                m[parts[1]] = int(parts[0])
        print(m["matches"], m["files searched"], m["bytes searched"])
    elif kind == "lines":
        print(sum(1 for _ in open(path, "rb")))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    globals()[cmd.replace("-", "_")](*args)
PYEOF
py() { python3 "$PYH" "$@"; }
RES=$DIR/results.jsonl
# measure KEY OK_RCS STDOUT_FILE CWD SAMPLE CMD...: one timed run, appended to $RES
measure() { local k=$1; say "run $k"; py measure "$RES" "$@" >"$DIR/$k.line" || die "$k failed (see above)"; say "  $(cat "$DIR/$k.line")"; }

# ------------------------------------------------------------ 1. tools (installed once, pinned)
mkdir -p "$TOOLS"
(
  flock 9
  installed() { cargo install --list --root "$TOOLS" 2>/dev/null | grep -q "^$1 v$2:"; }
  for t in "ripgrep $RG_VERSION rg" "ripsecrets $RIPSECRETS_VERSION ripsecrets"; do
    read -r crate ver bin <<<"$t"
    if ! installed "$crate" "$ver" || [[ ! -x $TOOLS/bin/$bin ]]; then
      say "installing $crate $ver into .stack/bench-tools (cargo install; a few minutes)"
      cargo install -q --locked --force --root "$TOOLS" "$crate" --version "$ver" || die "cargo install $crate $ver failed"
    fi
  done
  if [[ $("$VENV/bin/detect-secrets" --version 2>/dev/null) != "$DETECT_SECRETS_VERSION" ]]; then
    say "installing detect-secrets $DETECT_SECRETS_VERSION into .stack/scan-bench-venv"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv?)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "detect-secrets==$DETECT_SECRETS_VERSION" ||
      die "pip install detect-secrets==$DETECT_SECRETS_VERSION failed"
  fi
) 9>"$TOOLS/.install.lock"
RG=$TOOLS/bin/rg RIPSECRETS=$TOOLS/bin/ripsecrets DETECT_SECRETS=$VENV/bin/detect-secrets

# ------------------------------------------------------------ 2. sidekey-scan (copied: a rebuild by someone else mid-run changes nothing)
SK=$DIR/sidekey-scan
if [[ -n ${BENCH_SCAN_BIN:-} ]]; then
  [[ -x $BENCH_SCAN_BIN ]] || die "BENCH_SCAN_BIN=$BENCH_SCAN_BIN is not an executable"
  cp "$BENCH_SCAN_BIN" "$SK"; SK_SRC="$BENCH_SCAN_BIN (given)"
else
  say "cargo build --release -p sidekey-scanner (waits while another build holds the cargo lock)"
  cargo build --release -q -p sidekey-scanner 2>"$DIR/build.err" ||
    die "cargo build --release -p sidekey-scanner failed: $(grep -m1 '^error' "$DIR/build.err") (or set BENCH_SCAN_BIN)"
  cp target/release/sidekey-scan "$SK"
  SK_SRC="workspace at git $(git describe --always --dirty 2>/dev/null || echo '?'), built with cargo build --release"
fi
"$SK" --version >/dev/null || die "$SK does not run"

# ------------------------------------------------------------ 3. corpus
RULE_FILES=(config/rules.toml config/rules/*.toml)
read -r N_RULES N_KW < <(py keywords "$DIR/keywords.txt" "${RULE_FILES[@]}") || die "cannot read the keywords of ${RULE_FILES[*]}"
if [[ -n ${BENCH_CORPUS:-} ]]; then
  IFS=: read -r -a CAND <<<"$BENCH_CORPUS"; MODE=fixed
  for d in "${CAND[@]}"; do [[ -d $d ]] || die "BENCH_CORPUS: $d is not a directory"; done
else
  SYSROOT=$(rustc --print sysroot 2>/dev/null || true)
  CAND=("${CARGO_HOME:-$HOME/.cargo}/registry/src" /usr/include)
  [[ -n $SYSROOT ]] && CAND+=("$SYSROOT/lib/rustlib/src/rust")
  for d in "$ROOT"/.stack/venv/lib/python3*/site-packages; do [[ -d $d ]] && CAND+=("$d"); done
  [[ -n $SYSROOT ]] && CAND+=("$SYSROOT/share/doc")
  MODE=auto
fi
say "sizing the corpus ($MODE)"
mapfile -t CORPUS < <(py corpus "$DIR/corpus.json" "$CORPUS_MB" "$MODE" "${CAND[@]}")
((${#CORPUS[@]})) || die "no corpus directory exists (tried: ${CAND[*]}); set BENCH_CORPUS=DIR:DIR"
read -r C_FILES C_BYTES C_TEXT C_BIN < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["files"], d["bytes"], d["text_bytes"], d["binary_files"])' "$DIR/corpus.json")
((C_BYTES >= CORPUS_MB * 1000000)) ||
  die "the corpus holds $((C_BYTES / 1000000)) MB, less than $CORPUS_MB MB: add directories with BENCH_CORPUS (or lower BENCH_CORPUS_MB)"
say "corpus: ${CORPUS[*]}: $C_FILES files, $C_BYTES bytes ($C_TEXT in text files, $C_BIN binary files)"
say "keywords: $N_KW from $N_RULES rules"
# rg searches what sidekey-scan walks: hidden files, no ignore files, no .git/, binary files skipped
# (rg stops at a NUL; sidekey-scan sniffs 8 KiB), keywords as literals, ASCII case-insensitive.
RG_BASE=(--no-config --no-ignore --hidden -g '!.git' --fixed-strings --ignore-case --no-unicode --count-matches --stats)
RG_ARGS=("${RG_BASE[@]}" -f "$DIR/keywords.txt")
SK_ARGS=(--format json --no-progress)
RG_SHOW="--no-config --no-ignore --hidden -g '!.git' --fixed-strings --ignore-case --no-unicode --count-matches --stats -f KEYWORDS DIR…"
# The floor: a sweep for six literals that name common secrets (ripgrep's SIMD Teddy searcher),
# what a quick `rg` for leaks costs on the same files.
SIX=(akia ghp_ xoxb- sk_live_ password "-----begin")
printf '%s\n' "${SIX[@]}" >"$DIR/six.txt"
RG6_ARGS=("${RG_BASE[@]}" -f "$DIR/six.txt")

# ------------------------------------------------------------ 4. throughput: full corpus, best of REPEAT
say "warming the page cache (read every corpus file once, plus one untimed run of each tool)"
for d in "${CORPUS[@]}"; do find "$d" -name .git -prune -o -type f -print0 | xargs -0 -r cat >/dev/null 2>&1 || true; done
"$RG" "${RG_ARGS[@]}" "${CORPUS[@]}" >/dev/null 2>&1 || true
"$SK" "${SK_ARGS[@]}" --output /dev/null "${CORPUS[@]}" 2>/dev/null || true
for ((i = 1; i <= REPEAT; i++)); do
  measure "rg.full.$i" 0,1 "$DIR/rg.full.out" / 0 "$RG" "${RG_ARGS[@]}" "${CORPUS[@]}"
  measure "rg6.full.$i" 0,1 "$DIR/rg6.full.out" / 0 "$RG" "${RG6_ARGS[@]}" "${CORPUS[@]}"
  measure "sk.full.$i" 0,1 /dev/null / 0 "$SK" "${SK_ARGS[@]}" --output "$DIR/sk.full.json" "${CORPUS[@]}"
done
read -r SK_FINDINGS SK_SKIPPED < <(py count sidekey "$DIR/sk.full.json")
read -r RG_MATCHES RG_FILES RG_BYTES < <(py count rg "$DIR/rg.full.out")
say "sidekey-scan: $SK_FINDINGS findings, $SK_SKIPPED skipped; ripgrep: $RG_MATCHES keyword matches in $RG_FILES files ($RG_BYTES bytes searched)"

# ------------------------------------------------------------ 5. throughput: ripsecrets and detect-secrets on subsets
SUB_RS=$DIR/subset-ripsecrets.json SUB_DS=$DIR/subset-detect-secrets.json
subset_paths() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("\n".join(d[sys.argv[2]]))' "$1" "$2"; }
if ((RIPSECRETS_MB > 0)); then
  say "choosing a ${RIPSECRETS_MB} MB subset for ripsecrets"
  py subset "$SUB_RS" "$RIPSECRETS_MB" "${CORPUS[@]}"; mapfile -t RS_PATHS < <(subset_paths "$SUB_RS" paths)
else
  cp "$DIR/corpus.json" "$SUB_RS"; RS_PATHS=("${CORPUS[@]}")
fi
measure rs.ripsecrets 0,1 "$DIR/rs.ripsecrets.out" / 0 "$RIPSECRETS" "${RS_PATHS[@]}"
measure rs.sk 0,1 /dev/null / 0 "$SK" "${SK_ARGS[@]}" --output "$DIR/rs.sk.json" "${RS_PATHS[@]}"
measure rs.rg 0,1 "$DIR/rs.rg.out" / 0 "$RG" "${RG_ARGS[@]}" "${RS_PATHS[@]}"
if ((DETECT_SECRETS_MB > 0)); then
  say "choosing a ${DETECT_SECRETS_MB} MB subset for detect-secrets"
  py subset "$SUB_DS" "$DETECT_SECRETS_MB" "${CORPUS[@]}"; mapfile -t DS_PATHS < <(subset_paths "$SUB_DS" paths)
  mapfile -t DS_REL < <(subset_paths "$SUB_DS" rel)
  DS_CWD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cwd"])' "$SUB_DS")
  # detect-secrets reports paths relative to its working directory and drops files outside it.
  measure ds.detect-secrets 0,1 "$DIR/ds.detect-secrets.json" "$DS_CWD" 0 "$DETECT_SECRETS" scan --all-files "${DS_REL[@]}"
  measure ds.sk 0,1 /dev/null / 0 "$SK" "${SK_ARGS[@]}" --output "$DIR/ds.sk.json" "${DS_PATHS[@]}"
  measure ds.rg 0,1 "$DIR/ds.rg.out" / 0 "$RG" "${RG_ARGS[@]}" "${DS_PATHS[@]}"
fi

# ------------------------------------------------------------ 6. --staged: 10 changed files in a 200-file repository
say "--staged: building a 200-file repository from the corpus"
STAGED_REPO=$DIR/staged-repo; mkdir -p "$STAGED_REPO"
SECRET_FILE=$(py staged-setup "$STAGED_REPO" 200 10 "${CORPUS[@]}") || die "cannot build the --staged repository"
say "--staged: $STAGED_RUNS runs of git diff --cached --raw (the floor: one git process)"
say "  $(py staged-run "$DIR/staged.jsonl" "$STAGED_REPO" "$STAGED_RUNS" "$SECRET_FILE" git diff --cached --raw -z --no-abbrev --no-renames HEAD)"
printf 'one line\n' >"$DIR/one-line.txt"
say "--staged: $STAGED_RUNS runs of sidekey-scan on a one-line file (the floor: start-up, rules compiled)"
say "  $(py staged-run "$DIR/staged.jsonl" "$STAGED_REPO" "$STAGED_RUNS" "$SECRET_FILE" "$SK" --no-progress "$DIR/one-line.txt")"
say "--staged: $STAGED_RUNS runs of sidekey-scan --staged"
say "  $(py staged-run "$DIR/staged.jsonl" "$STAGED_REPO" "$STAGED_RUNS" "$SECRET_FILE" "$SK" --staged --no-progress)"
python3 - "$DIR/staged.jsonl" "$SECRET_FILE" <<'EOF' || die "sidekey-scan --staged did not report the staged secret (exit 1 naming the file expected)"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])][-1]
sys.exit(0 if r["rc"] == 1 and sys.argv[2] in r["out"] else 1)
EOF

# ------------------------------------------------------------ 7. --git: history vs git cat-file --batch-all-objects
GIT_OK=0 GIT_NOTE=""
if [[ -z ${BENCH_GIT_REPO:-} ]]; then
  GIT_NOTE="skipped: BENCH_GIT_REPO is not set (point it at a repository with thousands of commits, bare or not)"
elif ! GD=$(git -C "$BENCH_GIT_REPO" rev-parse --absolute-git-dir 2>/dev/null); then
  GIT_NOTE="skipped: BENCH_GIT_REPO=$BENCH_GIT_REPO is not a git repository"
else
  GIT_OK=1
  GIT_NAME=$BENCH_GIT_REPO
  # sidekey-scan --git runs `git rev-parse --show-toplevel`, which fails in a bare repository: it is
  # run in an empty work tree with GIT_DIR pointing at the repository (same objects, same refs).
  WT=$DIR/worktree; mkdir -p "$WT"
  GENV=(env "GIT_DIR=$GD" "GIT_WORK_TREE=$WT")
  (cd "$WT" && "${GENV[@]}" git rev-parse --show-toplevel >/dev/null) || die "git cannot use $GD with an empty work tree"
  # The commits a quarter and half of the way down HEAD's first-parent line: the history up to them is a prefix.
  read -r QUARTER HALF < <(git --git-dir="$GD" rev-list --first-parent --reverse HEAD |
    awk '{ l[NR] = $0 } END { q = int(NR / 4); h = int(NR / 2); if (q < 1) q = 1; if (h < 1) h = 1; print l[q], l[h] }')
  [[ -n ${HALF:-} ]] || die "$BENCH_GIT_REPO: no HEAD commit"
  say "history: counting commits and blobs"
  N_ALL=$(py blobs "$GD" --all "$DIR/git.all.json") || die "cannot count the objects of $GD"
  N_QUARTER=$(py blobs "$GD" "$QUARTER" "$DIR/git.quarter.json") || die "cannot count the objects of $GD"
  N_HALF=$(py blobs "$GD" "$HALF" "$DIR/git.half.json") || die "cannot count the objects of $GD"
  say "  all refs: $N_ALL; up to $QUARTER (a quarter down HEAD's first-parent line): $N_QUARTER; up to $HALF (half): $N_HALF"
  read -r G_OBJ G_OBJ_BYTES < <(git --git-dir="$GD" cat-file --batch-all-objects --batch-check='%(objectsize)' | awk '{ n++; s += $1 } END { print n, s }')
  git --git-dir="$GD" cat-file --batch-all-objects --batch >/dev/null # warm
  for ((i = 1; i <= REPEAT; i++)); do
    measure "git.catfile.$i" 0 /dev/null "$WT" 1 git --git-dir="$GD" cat-file --batch-all-objects --batch
  done
  for ((i = 1; i <= REPEAT; i++)); do
    measure "git.sk.full.$i" 0,1 /dev/null "$WT" 1 "${GENV[@]}" "$SK" --git --format json --output "$DIR/git.sk.full.json" --no-progress
  done
  measure git.sk.half 0,1 /dev/null "$WT" 1 "${GENV[@]}" "$SK" --git "$HALF" --format json --output "$DIR/git.sk.half.json" --no-progress
  measure git.sk.quarter 0,1 /dev/null "$WT" 1 "${GENV[@]}" "$SK" --git "$QUARTER" --format json --output "$DIR/git.sk.quarter.json" --no-progress
  read -r GIT_FINDINGS _ < <(py count sidekey "$DIR/git.sk.full.json")
fi

# ------------------------------------------------------------ 8. report
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
export SIX_SHOW="${SIX[*]}" ROOT DIR RES N_RULES N_KW LOAD0 LOAD1 SK_SRC REPEAT STAGED_RUNS GIT_OK GIT_NOTE RIPSECRETS_MB DETECT_SECRETS_MB
export V_SK="$("$SK" --version)" V_RG="$("$RG" --version | head -n1)" V_RS="$("$RIPSECRETS" --version)"
export V_DS="detect-secrets $("$DETECT_SECRETS" --version)" V_GIT="$(git --version)" V_PY="$(python3 --version)"
export MACHINE="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -h | awk '/^Mem:/ {print $2}') RAM, $(uname -sr)"
export GIT_NAME="${GIT_NAME:-}" QUARTER="${QUARTER:-}" HALF="${HALF:-}" G_OBJ="${G_OBJ:-}" G_OBJ_BYTES="${G_OBJ_BYTES:-}" GIT_FINDINGS="${GIT_FINDINGS:-}"
export SK_FINDINGS SK_SKIPPED RG_MATCHES RG_FILES RG_BYTES ELAPSED=$((SECONDS - T0))
python3 - >"$DIR/report.md" <<'PYEOF' || die "report failed"
import json, os
E = os.environ
D = E["DIR"]
res = {}
for line in open(E["RES"]):
    r = json.loads(line)
    res[r["key"]] = r
best = lambda prefix: min((r for k, r in res.items() if k.startswith(prefix)), key=lambda r: r["wall"])
corpus = json.load(open(f"{D}/corpus.json"))
mb = lambda b: b / 1e6
rate = lambda b, r: mb(b) / r["wall"] if r["wall"] else float("nan")
mib = lambda kb: f"{kb / 1024:.1f} MiB"
out = []
p = out.append

def count(kind, path):
    try:
        if kind == "sidekey":
            d = json.load(open(path)); return f"{len(d['findings'])} findings"
        if kind == "detect-secrets":
            d = json.load(open(path)); return f"{sum(len(v) for v in d['results'].values())} secrets"
        if kind == "lines":
            return f"{sum(1 for _ in open(path, 'rb'))} lines"
        if kind == "rg":
            for line in open(path, errors="replace"):
                if line.strip().endswith(" matches") and line.split()[0].isdigit():
                    return f"{int(line.split()[0])} keyword matches"
    except OSError:
        pass
    return "?"

def verdict(ok):
    return "met" if ok else "**MISSED**"

# --- throughput
sk, rg, rg6 = best("sk.full."), best("rg.full."), best("rg6.full.")
B, T = corpus["bytes"], corpus["text_bytes"]
p("### Throughput, full corpus")
p("")
p(f"{corpus['files']} files, {B} bytes ({mb(B):.1f} MB; {mb(T):.1f} MB in text files, {corpus['binary_files']} binary files) in "
  + ", ".join(f"`{d}`" for d in corpus["dirs"]) + f". Best of {E['REPEAT']} warm runs; MB = 10^6 bytes.")
p("")
p("| tool | wall | CPU | MB/s (all bytes) | MB/s (text bytes) | peak RSS | result | vs ripgrep, keywords | vs ripgrep, six literals |")
p("|---|---:|---:|---:|---:|---:|---|---:|---:|")
for name, r, kind, f in (("sidekey-scan", sk, "sidekey", f"{D}/sk.full.json"), ("ripgrep, keywords", rg, "rg", f"{D}/rg.full.out"),
                         ("ripgrep, six literals", rg6, "rg", f"{D}/rg6.full.out")):
    p(f"| {name} | {r['wall']:.2f} s | {r['cpu']:.2f} s | {rate(B, r):.1f} | {rate(T, r):.1f} | {mib(r['rss_kb'])} | {count(kind, f)} | {rg['wall'] / r['wall']:.2f}× | {rg6['wall'] / r['wall']:.2f}× |")
ratio_rg, ratio_rg6 = rg["wall"] / sk["wall"], rg6["wall"] / sk["wall"]
p("")
sub = []
for tag, label, tool_key, kind, out_file in (("rs", "ripsecrets", "rs.ripsecrets", "lines", f"{D}/rs.ripsecrets.out"),
                                             ("ds", "detect-secrets", "ds.detect-secrets", "detect-secrets", f"{D}/ds.detect-secrets.json")):
    if tool_key not in res:
        continue
    s = json.load(open(f"{D}/subset-{label}.json"))
    rows = [(label, res[tool_key], kind, out_file), ("sidekey-scan", res[f"{tag}.sk"], "sidekey", f"{D}/{tag}.sk.json"),
            ("ripgrep, keywords", res[f"{tag}.rg"], "rg", f"{D}/{tag}.rg.out")]
    p(f"### Throughput, {label} subset")
    p("")
    paths = s.get("paths") or s["dirs"]
    where = ", ".join(f"`{x}`" for x in paths[:3]) + (f" … ({len(paths)} paths)" if len(paths) > 3 else "")
    p(f"{s['files']} files, {s['bytes']} bytes ({mb(s['bytes']):.1f} MB, {mb(s['text_bytes']):.1f} MB text): {where}. One warm run each.")
    p("")
    p(f"| tool | wall | MB/s | peak RSS | result | sidekey-scan's MB/s ÷ this |")
    p("|---|---:|---:|---:|---|---:|")
    for name, r, k, f in rows:
        p(f"| {name} | {r['wall']:.2f} s | {rate(s['bytes'], r):.2f} | {mib(r['rss_kb'])} | {count(k, f)} | {r['wall'] / res[tag + '.sk']['wall']:.2f}× |")
    p("")
    sub.append((label, res[tool_key]["wall"] / res[f"{tag}.sk"]["wall"]))

# --- staged
st = [json.loads(l) for l in open(f"{D}/staged.jsonl")]
p("### `--staged`: 10 changed files (one with a generated secret) in a 200-file repository")
p("")
p(f"{E['STAGED_RUNS']} runs after 3 warm-ups, wall time of the whole process (start, git calls, scan, exit), from Python's perf_counter around subprocess.")
p("")
p("| command | p50 | p95 | max | exit |")
p("|---|---:|---:|---:|---:|")
names = ["`git diff --cached --raw` (floor: one git process)", "`sidekey-scan FILE` on a one-line file (floor: start-up)", "`sidekey-scan --staged`"]
for n, r in zip(names, st):
    p(f"| {n} | {r['p50']:.1f} ms | {r['p95']:.1f} ms | {r['max']:.1f} ms | {r['rc']} |")
p("")
sk_st = st[-1]

# --- git
g = None
if E["GIT_OK"] == "1":
    a = json.load(open(f"{D}/git.all.json")); q = json.load(open(f"{D}/git.quarter.json")); h = json.load(open(f"{D}/git.half.json"))
    cf, full, quar, half = best("git.catfile."), best("git.sk.full."), res["git.sk.quarter"], res["git.sk.half"]
    def own(r):
        return r["peaks_kb"].get("sidekey-scan")
    def gits(r):
        return ", ".join(f"{k} {mib(v)}" for k, v in sorted(r["peaks_kb"].items()) if k.startswith("git")) or "—"
    p(f"### `--git`: history of `{E['GIT_NAME']}`")
    p("")
    p(f"The repository holds {E['G_OBJ']} objects, {mb(int(E['G_OBJ_BYTES'])):.1f} MB uncompressed. `git cat-file` and `sidekey-scan --git` (all refs) best of {E['REPEAT']} warm runs, the prefixes one run each; "
      f"sidekey-scan reported {E['GIT_FINDINGS']} findings on the full history. Peak RSS: GNU time's %M is the largest of the process and the children it waited for "
      "(git log, git cat-file); \"own\" is sidekey-scan's VmHWM alone, polled every 20 ms.")
    p("")
    p("| run | commits | blobs | wall | vs cat-file | peak RSS (%M) | sidekey-scan own | git children |")
    p("|---|---:|---:|---:|---:|---:|---:|---|")
    p(f"| `git cat-file --batch-all-objects --batch >/dev/null` | {a['commits']} | all objects | {cf['wall']:.2f} s | 1.00× | {mib(cf['rss_kb'])} | — | {gits(cf)} |")
    p(f"| `sidekey-scan --git` (all refs) | {a['commits']} | {a['blobs']} ({mb(a['blob_bytes']):.0f} MB) | {full['wall']:.2f} s | {full['wall'] / cf['wall']:.2f}× | {mib(full['rss_kb'])} | {mib(own(full)) if own(full) else '?'} | {gits(full)} |")
    for label, rev, c, r in (("first half", E["HALF"], h, half), ("first quarter", E["QUARTER"], q, quar)):
        p(f"| `sidekey-scan --git {rev[:12]}` ({label}) | {c['commits']} | {c['blobs']} ({mb(c['blob_bytes']):.0f} MB) | {r['wall']:.2f} s | — | {mib(r['rss_kb'])} | {mib(own(r)) if own(r) else '?'} | {gits(r)} |")
    p("")
    g = (full["wall"] / cf["wall"], own(full), own(quar), a, q, own(half), h)
else:
    p("### `--git`")
    p("")
    p(E["GIT_NOTE"] + ".")
    p("")

# --- targets
p("### Targets")
p("")
p(f"- Throughput ≥ 0.30× ripgrep's six-literal sweep on the full corpus: {ratio_rg6:.2f}× ({verdict(ratio_rg6 >= 0.30)}); "
  f"vs ripgrep searching all {E['N_KW']} keywords: {ratio_rg:.2f}×.")
for label, x in sub:
    tgt = " (target ≥ 100×: " + verdict(x >= 100) + ")" if label == "ripsecrets" else ""
    p(f"- vs {label} on its subset: {x:.1f}× its MB/s{tgt}.")
p(f"- `--staged` p95 ≤ 50 ms: {sk_st['p95']:.1f} ms ({verdict(sk_st['p95'] <= 50)}).")
if g:
    ratio, own_full, own_q, a, q, own_h, h = g
    p(f"- `--git` ≤ 1.5× `git cat-file --batch-all-objects --batch`: {ratio:.2f}× ({verdict(ratio <= 1.5)}).")
    if own_full and own_q and own_h:
        p(f"- memory vs history length: sidekey-scan's own peak RSS {mib(own_q)} on {q['commits']} commits / {q['blobs']} blobs, "
          f"{mib(own_h)} on {h['commits']} / {h['blobs']}, {mib(own_full)} on {a['commits']} / {a['blobs']} "
          f"({own_full / own_q:.2f}× for {a['blobs'] / max(q['blobs'], 1):.1f}× the blobs); the git processes it drives: see the table.")
else:
    p(f"- `--git`: {E['GIT_NOTE']}.")
print("\n".join(out))
PYEOF
cat "$DIR/report.md"

RS_DESC="a ${RIPSECRETS_MB} MB subset of the corpus (whole directories in name order, the first corpus directory first)"
((RIPSECRETS_MB > 0)) || RS_DESC="the whole corpus"
cat >"$ROOT/bench/SCAN_RESULTS.md" <<EOF
# sidekey-scan benchmark

Generated by \`bench/scan.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (run took $((SECONDS - T0)) s).

**Machine:** $MACHINE. Load average at start $LOAD0, at the end $LOAD1 (this run's own load included);
every tool runs on the same $(nproc) cores, so other work on the machine skews all numbers — compare rows of one run.

**Versions:** $V_SK ($SK_SRC), $V_RG, $V_RS, $V_DS, $V_GIT, $V_PY.

**Method:** every tool scans the same directories; the page cache is warmed first (every file read, one untimed run
of each tool). Timing, CPU (user + system) and peak RSS from \`/usr/bin/time -f '%e %M %U %S'\`.
- sidekey-scan: \`sidekey-scan ${SK_ARGS[*]} --output FILE DIR…\` (hidden files scanned, .gitignore not honoured,
  .git/ skipped, binary files dropped after an 8 KiB sniff, archives opened and scanned).
- ripgrep, six literals: the same command with \`-f\` naming six literals (${SIX[*]}): the floor, what a quick
  sweep for leaks costs on these files.
- ripgrep, keywords: \`rg $RG_SHOW\` with the $N_KW distinct \`keywords\` of the $N_RULES rules in
  ${RULE_FILES[*]}, one literal per line: the same files (hidden, no ignore files, no .git/, binary files skipped at
  the first NUL), ASCII case-insensitive like sidekey-scan's keyword pass. This is the cost of finding the keywords
  alone, which sidekey-scan has to do before it runs any rule's regex.
- ripsecrets: \`ripsecrets PATH…\` on $RS_DESC. It has no flags for the file set: it skips hidden files and honours .ignore/.secretsignore, and searches
  binary files in full.
- detect-secrets: \`detect-secrets scan --all-files PATH…\` on a ${DETECT_SECRETS_MB} MB subset chosen the same way (0: not run), run from its
  common parent (it drops paths outside its working directory); it uses one process per CPU.
- sidekey-scan and ripgrep are run on each subset too, so the ratios compare the same files.
- \`--staged\`: a fresh repository of 200 source files copied from the corpus (1–40 KiB each, 10 directories), one
  commit, then 40 lines appended to 10 files — one of them also gets \`api_token = "<32 random characters>"\`,
  generated at run time — and \`git add\`. \`sidekey-scan --staged --no-progress\` is checked to exit 1 naming that
  file, then run $STAGED_RUNS times; two floors are timed the same way: \`git diff --cached --raw\` (one git process)
  and \`sidekey-scan\` on a one-line file (its start-up: the rules compiled).
- \`--git\`: in an empty work tree with \`GIT_DIR\` set to the repository (a bare mirror cannot answer
  \`git rev-parse --show-toplevel\`), \`sidekey-scan --git --format json --output FILE\` (every ref) and
  \`sidekey-scan --git REV\` for the commits a half and a quarter of the way down HEAD's first-parent line (each with its ancestors),
  against \`git cat-file --batch-all-objects --batch >/dev/null\` on the same repository. Commits and blobs are counted
  with \`git rev-list --objects\`.

## Results

$(cat "$DIR/report.md")
EOF
say "wrote bench/SCAN_RESULTS.md; done in $((SECONDS - T0)) s"
