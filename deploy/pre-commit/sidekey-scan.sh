#!/bin/sh
# The pinned pre-commit hooks' entry (.pre-commit-hooks.yaml, ids sidekey-scan and
# sidekey-scan-pre-push): runs the sidekey-scan of the revision that `rev:` names in the
# user's .pre-commit-config.yaml. pre-commit clones that revision into its cache; the first
# run builds sidekey-scan there (`cargo build --release --locked`, a few minutes, once per
# revision); later runs start the built binary at once.
#
#   sidekey-scan.sh staged [ARGS...]     what the index adds over HEAD (pre-commit stage)
#   sidekey-scan.sh pre-push [ARGS...]   the pushed commits (PRE_COMMIT_FROM_REF..TO_REF)
#
# Knobs: SIDEKEY_HOOK_TARGET_DIR (where to build; default: target/ in the hook's clone),
#        SIDEKEY_HOOK_PROFILE (cargo profile, default release).
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
profile=${SIDEKEY_HOOK_PROFILE:-release}
target=${SIDEKEY_HOOK_TARGET_DIR:-$here/target}
case $profile in dev | test) dir=debug ;; *) dir=$profile ;; esac
bin=$target/$dir/sidekey-scan

# Built already (its own clone's target/): start it. A shared target dir may hold another
# revision's binary, so there cargo decides (a no-op when it is current).
if [ ! -x "$bin" ] || [ -n "${SIDEKEY_HOOK_TARGET_DIR:-}" ]; then
  if ! command -v cargo >/dev/null 2>&1; then
    echo "sidekey-scan hook: cargo not found; this hook builds sidekey-scan from the pinned revision." >&2
    echo "Install Rust (https://rustup.rs), or use the hook ids sidekey-scan-system /" >&2
    echo "sidekey-scan-pre-push-system with a sidekey-scan on PATH." >&2
    exit 2
  fi
  [ -x "$bin" ] || echo "sidekey-scan hook: building sidekey-scan at this revision (once)..." >&2
  cargo build --quiet --locked --profile "$profile" --target-dir "$target" \
    --manifest-path "$here/Cargo.toml" -p sidekey-scanner --bin sidekey-scan >&2
fi

mode=${1:-}
[ $# -gt 0 ] && shift
case $mode in
  staged) exec "$bin" --staged "$@" ;;
  pre-push) exec "$bin" --git "${PRE_COMMIT_FROM_REF:+$PRE_COMMIT_FROM_REF..}${PRE_COMMIT_TO_REF:-HEAD}" "$@" ;;
  *)
    echo "sidekey-scan hook: usage: $0 staged|pre-push [ARGS...] (got '${mode}')" >&2
    exit 2
    ;;
esac
