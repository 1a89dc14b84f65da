"""Part B of bench/soak.sh: a client that follows one vault.database secret with the long-poll API
(GET /v1/secrets/NAME?wait=VERSION&timeout=30s on the agent's Unix socket), swaps to each new
credential as soon as it arrives, and meanwhile logs in to PostgreSQL continuously (a new
connection, SELECT current_user, close) with the credential it holds. It stops after ROTATIONS
new versions (or at --max-seconds) and prints one JSON summary on stdout, progress on stderr.

No password is printed or written: failure texts are scrubbed of every password seen, and at the
end every log file named with --search is searched for every password this client was served.
"""

import argparse
import http.client
import json
import socket
import sys
import threading
import time
from datetime import datetime

import psycopg


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def get(sock_path, path, timeout):
    """One request on a new connection (so the agent also sees connection churn)."""
    conn = UnixHTTPConnection(sock_path, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def rfc3339(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.current = None  # (version, username, password, lease expires_at epoch or None)
        self.passwords = set()
        self.stop = threading.Event()
        self.first_version = None
        self.rotations = 0  # sum of version increments seen
        self.wakeups = 0  # long-polls answered 200 with a new version
        self.timeouts = 0  # long-polls answered 304
        self.poll_errors = []  # (status, short text) of anything else
        self.anomalies = []  # version not increasing, wrong current_user
        self.received = {}  # version -> wall clock time the client had it
        self.margins = []  # seconds the replaced credential had left at the swap (1 s resolution)
        self.logins = 0
        self.failed = []  # {"at_s", "version", "latest_version", "error"}
        self.login_versions = set()

    def scrub(self, text):
        with self.lock:
            for p in self.passwords:
                text = text.replace(p, "***")
        return text


def serve(st, answer, now):
    data = answer["data"]
    lease = answer.get("lease") or {}
    exp = rfc3339(lease["expires_at"]) if lease.get("expires_at") else None
    with st.lock:
        st.passwords.add(data["password"])
        old = st.current
        st.current = (answer["version"], data["username"], data["password"], exp)
        st.received[answer["version"]] = now
        if old is not None and old[3] is not None:
            st.margins.append(old[3] - now)


def watcher(st, args, t0):
    version = st.current[0]
    while not st.stop.is_set():
        try:
            status, body = get(args.socket, f"/v1/secrets/{args.secret}?wait={version}&timeout=30s", 45)
        except OSError as e:
            st.poll_errors.append(("connection", type(e).__name__))
            time.sleep(0.2)
            continue
        now = time.time()
        if status == 304:
            st.timeouts += 1
            continue
        if status != 200:
            st.poll_errors.append((status, st.scrub(body[:200].decode(errors="replace"))))
            time.sleep(0.2)
            continue
        answer = json.loads(body)
        new = answer["version"]
        if new <= version:
            st.anomalies.append(f"long-poll for a version other than {version} answered version {new}")
            continue
        serve(st, answer, now)
        st.wakeups += 1
        st.rotations += new - version
        version = new
        if st.rotations >= args.rotations:
            st.stop.set()
    _ = t0


def login_loop(st, args, t0):
    while not st.stop.is_set():
        with st.lock:
            version, user, password, _ = st.current
        try:
            with psycopg.connect(
                host=args.pg_host,
                port=args.pg_port,
                dbname=args.pg_db,
                user=user,
                password=password,
                sslmode="disable",
                connect_timeout=10,
            ) as conn:
                (who,) = conn.execute("SELECT current_user").fetchone()
            if who != user:
                st.anomalies.append(f"logged in as {who!r}, expected {user!r}")
            st.logins += 1
            st.login_versions.add(version)
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            latest = st.current[0]
            st.failed.append(
                {
                    "at_s": round(time.time() - t0, 3),
                    "version": version,
                    "latest_version": latest,
                    "error": st.scrub(f"{type(e).__name__}: {e}".strip())[:300],
                }
            )
            time.sleep(0.05)


def audit_delays(st, audit_path):
    """Agent's reissue time (audit, ms) to the client holding that version, per version."""
    issued = {}
    try:
        with open(audit_path, encoding="utf-8") as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("secret") == st.secret and ev.get("event") in ("issue", "reissue") and ev.get("version"):
                    issued[ev["version"]] = rfc3339(ev["ts"]) if isinstance(ev["ts"], str) else ev["ts"] / 1000
    except OSError:
        return []
    return sorted(st.received[v] - issued[v] for v in st.received if v in issued and v != st.first_version)


def leak_search(st, paths):
    hits = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                blob = f.read()
        except OSError:
            continue
        for pw in st.passwords:
            if pw.encode() in blob:
                hits.append(p)
                break
    return hits


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--rotations", type=int, required=True)
    ap.add_argument("--max-seconds", type=float, required=True)
    ap.add_argument("--pg-host", default="127.0.0.1")
    ap.add_argument("--pg-port", type=int, required=True)
    ap.add_argument("--pg-db", default="postgres")
    ap.add_argument("--audit", required=True)
    ap.add_argument("--search", action="append", default=[])
    args = ap.parse_args()

    st = State()
    st.secret = args.secret
    t0 = time.time()
    status, body = get(args.socket, f"/v1/secrets/{args.secret}", 10)
    if status != 200:
        sys.exit(f"soak_watch: GET /v1/secrets/{args.secret} answered {status}")
    answer = json.loads(body)
    serve(st, answer, time.time())
    st.margins.clear()
    st.first_version = answer["version"]

    threads = [
        threading.Thread(target=watcher, args=(st, args, t0), daemon=True),
        threading.Thread(target=login_loop, args=(st, args, t0), daemon=True),
    ]
    for t in threads:
        t.start()
    next_report = t0 + 30
    timed_out = False
    while not st.stop.wait(1):
        now = time.time()
        if now - t0 > args.max_seconds:
            timed_out = True
            st.stop.set()
            break
        if now >= next_report:
            next_report += 30
            print(
                f"soak_watch: {now - t0:.0f} s: {st.rotations}/{args.rotations} rotations, "
                f"{st.logins} logins, {len(st.failed)} failed",
                file=sys.stderr,
                flush=True,
            )
    threads[1].join(15)  # the login in progress finishes; the watcher may sit in a long-poll
    elapsed = time.time() - t0

    delays = audit_delays(st, args.audit)
    leaks = leak_search(st, args.search)
    out = {
        "seconds": round(elapsed, 1),
        "timed_out": timed_out,
        "first_version": st.first_version,
        "last_version": st.current[0],
        "rotations": st.rotations,
        "wakeups": st.wakeups,
        "poll_timeouts": st.timeouts,
        "poll_errors": [list(e) for e in st.poll_errors],
        "anomalies": st.anomalies,
        "logins": st.logins,
        "failed_logins": len(st.failed),
        "failures": st.failed[:20],
        "versions_logged_in_with": len(st.login_versions),
        "delivery_ms_p50": round(pct(delays, 0.5) * 1000, 1) if delays else None,
        "delivery_ms_p99": round(pct(delays, 0.99) * 1000, 1) if delays else None,
        "delivery_ms_max": round(max(delays) * 1000, 1) if delays else None,
        "delivery_samples": len(delays),
        "margin_s_min": round(min(st.margins), 1) if st.margins else None,
        "margin_s_p50": round(pct(st.margins, 0.5), 1) if st.margins else None,
        "passwords_seen": len(st.passwords),
        "files_searched": len(args.search),
        "files_with_a_password": leaks,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
