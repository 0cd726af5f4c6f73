#!/bin/sh
# Make sure key login works on every host given, installing our key where it does not yet.
# Safe to rerun (from cron, a login hook or CI): hosts that already accept the key are left untouched.
#
#   provision.sh admin@10.0.0.5 backup@nas:2222
#   TN_KEYSETUP_ARGS="--accept-new" provision.sh newbox       # first contact: pin the host key
set -u
status=0
for host in "$@"; do
    if tn-keysetup --check -q ${TN_KEYSETUP_ARGS-} "$host"; then
        echo "$host: ok"
    elif tn-keysetup -q ${TN_KEYSETUP_ARGS-} "$host"; then
        echo "$host: installed"
    else
        echo "$host: FAILED" >&2
        status=1
    fi
done
exit $status
