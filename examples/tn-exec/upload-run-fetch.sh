#!/bin/sh
# A paramiko script's job done with tn-exec: upload an input file over SFTP, run a script on it with
# arguments under a timeout, keep stdout/stderr apart, and fetch the result file. Unlike the paramiko
# version, the host key is checked (no AutoAddPolicy), arguments are quoted one by one (no format
# strings), and no connection outlives its command.
#
# Usage: upload-run-fetch.sh [user@]host INPUT_FILE [LOCAL_RESULT]
# Extra tn-exec options (e.g. "-p 2222 -i ~/.ssh/id_ed25519") go in TN_EXEC_OPTS; the binary in TN_EXEC.
# TN_EXEC_PERSIST=SECONDS: the four steps share one SSH session (a background master that exits
# SECONDS after the last step) instead of paying a handshake each.
# A host without your key: put its password in a 0600 file and add "--password-file FILE" to
# TN_EXEC_OPTS (as a paramiko script's connect(password=...) did); with TN_EXEC_PERSIST it is used once.
set -eu

TN_EXEC=${TN_EXEC:-tn-exec}
OPTS="${TN_EXEC_OPTS:-}${TN_EXEC_PERSIST:+ --persist $TN_EXEC_PERSIST}"
host=$1
input=$2
# Parameter expansion, not basename/dirname: each fork costs a few ms, and this runs per request.
name=${input##*/}
title=${name%.txt}
result=${3:-"$title.result.txt"}
work=${REMOTE_WORKDIR:-tn-upload-run-fetch}
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac

# 1. A work directory, then the data and the script that processes it (temp names, renamed when whole).
"$TN_EXEC" run $OPTS -n "$host" -- mkdir -p "$work"
"$TN_EXEC" put $OPTS "$input" "$here/assess_report.py" "$host:$work/"

# 2. Run it: argv words reach the script verbatim, stderr stays on stderr, 60 s at most (exit 124).
"$TN_EXEC" run $OPTS -n -t 60 --cwd "$work" "$host" -- python3 assess_report.py "$name" "$title.result.txt"

# 3. Fetch the result (mode and mtime kept).
"$TN_EXEC" get $OPTS "$host:$work/$title.result.txt" "$result"
echo "result in $result"
