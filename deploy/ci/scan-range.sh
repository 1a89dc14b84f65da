#!/bin/sh
# The history range a CI run scans, then the scan: what a push or merge request adds, as SARIF
# (for code scanning) and the human report on stderr. Used by github-actions.yml and
# gitlab-ci.yml; runs anywhere with git and sidekey-scan on PATH.
#
#   BEFORE   the commit before the push (GitHub: github.event.before; GitLab:
#            CI_COMMIT_BEFORE_SHA); empty or all zeros (a new branch, a first push): BASE is
#            used, and without it the whole history of HEAD
#   BASE     the branch a pull/merge request targets (e.g. origin/main), for requests
#   SARIF    where to write the SARIF report (default sidekey.sarif)
#
# Exit: sidekey-scan's (0 clean, 1 findings, 2 error, 3 part of the input could not be read).
set -eu
sarif=${SARIF:-sidekey.sarif}
before=${BEFORE:-}
case $before in *[!0]*) ;; *) before= ;; esac
if [ -n "$before" ] && git cat-file -e "$before^{commit}" 2>/dev/null; then
  range="$before..HEAD"
elif [ -n "${BASE:-}" ]; then
  range="$(git merge-base "$BASE" HEAD)..HEAD"
else
  range=HEAD
fi
echo "sidekey-scan: scanning $range" >&2
status=0
sidekey-scan --git "$range" --format sarif --output "$sarif" || status=$?
# The same findings for the job log (redacted), unless the scan itself failed.
if [ "$status" -le 1 ]; then sidekey-scan --git "$range" >&2 || true; fi
exit "$status"
