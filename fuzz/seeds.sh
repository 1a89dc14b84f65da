#!/usr/bin/env bash
# Writes seed corpora for the fuzz targets into fuzz/corpus/<target>/ (git-ignored). Seeds are
# generated, never committed: archive members get random values at run time, so no key-shaped
# literal is ever in the repository. Needs python3 (and the zstd CLI for a .zst seed).
set -euo pipefail
cd "$(dirname "$0")"
root=..
corpus=corpus
mkdir -p "$corpus"/{agent_config,scanner_rules,archive,http_routes,cache_decoder}

# agent_config: the shipped configs.
cp "$root"/config/dev.toml "$corpus"/agent_config/dev.toml
cp "$root"/config/agent.example.toml "$corpus"/agent_config/agent.example.toml

python3 - "$root" "$corpus" <<'PY'
import gzip, io, json, os, secrets, sys, tarfile, zipfile, hashlib
root, corpus = sys.argv[1], sys.argv[2]

def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)

# scanner_rules: the built-in rules, a few rules a file, and gitleaks-style files.
text = open(os.path.join(root, "config/rules.toml")).read()
chunks = text.split("[[rules]]")[1:]
for i in range(0, len(chunks), 4):
    put("scanner_rules", f"builtin-{i // 4:03}.toml", "".join("[[rules]]" + c for c in chunks[i:i + 4]))
put("scanner_rules", "gitleaks.toml", '''title = "custom"
[extend]
useDefault = true

[[rules]]
id = "internal-token"
description = "Internal service token"
regex = \'\'\'(?i)internal[_-]?token\\s*[:=]\\s*["']?([a-z0-9]{24,48})["']?\'\'\'
secretGroup = 1
entropy = 3.0
keywords = ["internal"]
path = \'\'\'\\.(env|ya?ml)$\'\'\'
[rules.allowlist]
regexes = [\'\'\'^0+$\'\'\']
stopwords = ["example"]
''')
put("scanner_rules", "sidekey.toml", '''[[rules]]
id = "line-rule"
family = "saas"
regex = \'\'\'svc_([A-Za-z0-9]{30}[A-Za-z0-9]{6})\'\'\'
window = "line"
checksum = "github"
examples = ["svc_{alnum:36}"]
negative_examples = ["svc_short"]
[[rules.allowlists]]
regexes = ["^svc_0+"]
stopwords = ["dummy"]

[[rules]]
id = "no-keywords"
regex = \'\'\'[0-9]{3}-[a-z]{6}-secret\'\'\'
''')

# archive: text, UTF-16, gzip, zstd, tar, tgz, zip, nested, docker save, OCI layout.
def env():
    return f"DB_PASSWORD={secrets.token_hex(16)}\napi_token = \"{secrets.token_urlsafe(24)}\"\n".encode()

def tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()

def zip_(members, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()

put("archive", "plain.env", env())
put("archive", "utf16.txt", b"\xff\xfe" + env().decode().encode("utf-16-le"))
put("archive", "text.gz", gzip.compress(env()))
put("archive", "app.tar", tar([("./etc/app.env", env()), ("bin/tool", b"\x7fELF\x02\x01\x01\x00" * 8)]))
put("archive", "app.tgz", gzip.compress(tar([("etc/app.env", env())])))
put("archive", "app.zip", zip_([("config/app.env", env()), ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")]))
put("archive", "nested.zip", zip_([("inner.tar", tar([("deep.env", env())]))]))
# Issue 13's shapes: nested stored zips (opened in place), a filler before the secret (read on
# the budget's grace), an old v7 tar (no magic), a NUL byte before the secret, a false BOM.
def stored(members):
    return zip_(members, zipfile.ZIP_STORED)
inner = stored([("deep.env", env())])
for level in range(3):
    inner = stored([(f"l{level}.zip", inner), ("side.env", env())])
put("archive", "nested-stored.zip", inner)
put("archive", "filler-first.zip", zip_([("filler.bin", b"\0" * (2 << 20)), ("app.env", env())]))
v7 = io.BytesIO()
with tarfile.open(fileobj=v7, mode="w", format=tarfile.USTAR_FORMAT) as t:
    info = tarfile.TarInfo("etc/app.env")
    data = env()
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
raw = bytearray(v7.getvalue())
raw[257:265] = b"\0" * 8  # no ustar magic or version: an old-style header
raw[148:156] = b" " * 8
raw[148:156] = (b"%06o\0 " % sum(raw[:512]))
put("archive", "old-v7.tar", bytes(raw))
put("archive", "nul-first.env", b"# cfg\0\n" + env())
put("archive", "false-bom.env", b"\xff\xfe" + env())
layer = tar([("etc/app.env", env())])
put("archive", "docker-save.tar", tar([
    ("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["app:1"], "Layers": ["abc/layer.tar"]}]).encode()),
    ("config.json", b'{"config": {"Env": ["PATH=/usr/bin"]}}'),
    ("abc/layer.tar", layer),
]))
gz_layer = gzip.compress(layer)
digest = hashlib.sha256(gz_layer).hexdigest()
put("archive", "oci-layout.tar", tar([
    ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
    ("index.json", json.dumps({"schemaVersion": 2, "manifests": []}).encode()),
    (f"blobs/sha256/{digest}", gz_layer),
]))

# http_routes: a request target, then header lines.
for i, request in enumerate([
    "/v1/secrets",
    "/v1/health",
    "/metrics",
    "/v1/secrets/db?wait=3&timeout=2s\nAuthorization: Bearer fuzz-token",
    "/v1/secrets/a%2Db?timeout=1m30s",
    "/v1/aws-credentials/role%20x\nAuthorization: fuzz-token",
    "/secretsmanager/get?secretId=prod%2Fdb&versionStage=AWSCURRENT&refreshNow=true\nX-Aws-Parameters-Secrets-Token: fuzz",
    "/v1/fingerprints/match",
    "/v1/revoke\nX-Forwarded-For: 10.0.0.1",
]):
    put("http_routes", f"request-{i}", request)

# cache_decoder: odd first byte = plaintext entries; even = a blob with the sealed header.
entry = {
    "version": 3,
    "data": json.dumps({"username": "app", "password": secrets.token_hex(8)}),
    "revision": "7",
    "fetched_at": 1699999000.5,
    "lease": {"id": "database/creds/app/x1", "issued_at": 1699999000.0, "renewed_at": 1699999500.0,
              "expires_at": 1700003600.0, "ttl": 3600.0, "renewable": True},
}
put("cache_decoder", "plain", b"\x01" + json.dumps({"db": entry, "static": dict(entry, lease=None)}).encode())
put("cache_decoder", "empty", b"\x01{}")
put("cache_decoder", "sealed", b"\x00SKS1" + b"\x07" * 16 + os.urandom(12 + 40))
PY

if command -v zstd >/dev/null; then
    python3 -c 'import secrets; print("token = " + secrets.token_hex(20))' | zstd -q -c > "$corpus"/archive/text.zst
fi
echo "seeds written to fuzz/$corpus/"
