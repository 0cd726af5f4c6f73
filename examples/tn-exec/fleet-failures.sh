#!/bin/sh
# Runs CMD on every host listed in HOSTS_FILE (one a line) and prints "HOST EXIT [ERROR]" for each
# host where it failed, from tn-exec's JSON Lines through jq. Exits with tn-exec's own status: 0 only
# when every host succeeded, 255 when one could not be reached, else the largest remote status.
#   usage: fleet-failures.sh HOSTS_FILE CMD [ARG...]      (TN_EXEC, TN_EXEC_OPTS: binary, options)
set -eu
[ $# -ge 2 ] || { echo "usage: $0 HOSTS_FILE CMD [ARG...]" >&2; exit 64; }
hosts=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# shellcheck disable=SC2086  # TN_EXEC_OPTS is a list of words
"${TN_EXEC:-tn-exec}" ${TN_EXEC_OPTS:-} --json run -H "@$hosts" -- "$@" >"$out" || status=$?
jq -r 'select(.exit != null and .exit != 0) | "\(.host) \(.exit) \(.error // "")"' "$out"
exit "$status"
