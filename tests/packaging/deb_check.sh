#!/bin/bash
# Builds the Debian package from this tree, checks it with lintian, installs it with apt-get, runs a
# smoke test against the installed files only, purges it and checks that nothing is left behind.
# Needs root and `scripts/install-deps.sh --deb`. Prints each step's time; exit 0 only if all passed.
#   tests/packaging/deb_check.sh [--reuse|--build-only] [OUT_DIR]   (default ./build-deb: the .deb, build
#   log, lintian)
# --reuse: check the .deb already in OUT_DIR instead of building it again.
# --build-only: build the .deb and stop (.ci/run builds it while the sanitizer suite runs, then checks
#   it with --reuse).
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
reuse=0 build_only=0
[[ ${1-} == --reuse ]] && { reuse=1; shift; }
[[ ${1-} == --build-only ]] && { build_only=1; shift; }
out=$(realpath -m "${1:-build-deb}")
[[ $(id -u) == 0 ]] || { echo "deb_check: needs root (apt-get install, purge)" >&2; exit 77; }
mkdir -p "$out"
# A fixed place for the source copy: the compiler flags name it (-ffile-prefix-map), so ccache can
# reuse a previous run's objects.
work=$out/src
rm -rf "$work" && mkdir -p "$work"
smoke=$(mktemp -d /tmp/tn-deb-smoke.XXXXXX)
chmod 700 "$smoke"
trap 'rm -rf "$work" "$smoke"' EXIT
fail=0
T0=$SECONDS
step() {  # step NAME CMD...: runs it, prints its time, remembers a failure
    local name=$1 t=$SECONDS
    shift
    if "$@"; then echo "deb_check: $name ok ($((SECONDS - t)) s)"
    else echo "deb_check: $name FAILED ($((SECONDS - t)) s)"; fail=1; fi
}
check() {  # check DESCRIPTION CMD...: one smoke assertion
    local what=$1
    shift
    if "$@" >"$smoke/err" 2>&1; then return 0; fi
    echo "deb_check:   FAIL $what" >&2
    sed 's/^/deb_check:     /' "$smoke/err" >&2
    return 1
}

version=$(sed -n '1s/^tn (\([^)]*\)).*/\1/p' debian/changelog)
arch=$(dpkg --print-architecture)
deb=$out/tn_${version}_${arch}.deb
tools=(tn-keysetup tn-exec tn-forward tn-watch tn-tun tn-route tn-vnet)
system_units=(tn-route.service tn-vnet@.service tn-tun-server@.service tn-tun-client@.service tn-forward@.service)
user_units=(tn-forward@.service tn-watch@.service)

build() {
    # A copy of the tracked and new files (not build dirs): dpkg-buildpackage writes into its tree
    # and puts the .deb beside it.
    mkdir "$work/tn" &&
        (cd "$src" && git ls-files -co --exclude-standard -z | grep -zv '^build' | tar -c --null -T -) |
        tar -x -C "$work/tn" &&
        (cd "$work/tn" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" dpkg-buildpackage -b -us -uc \
            >"$out/build.log" 2>&1) || { tail -40 "$out/build.log"; return 1; }
    cp "$work"/*.deb "$out/" && ls -l "$deb"
}

lint() {
    lintian --fail-on error --tag-display-limit 0 "$deb" >"$out/lintian.txt" 2>&1
    local rc=$?
    cat "$out/lintian.txt"
    return $rc
}

install_it() {
    if dpkg-query -W -f='${Status}' tn 2>/dev/null | grep -q "install ok"; then
        echo "deb_check: tn was installed already; purging it first"
        apt-get purge -y -qq tn >/dev/null || return 1
    fi
    (cd "$out" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./${deb##*/}" >/dev/null)
}

smoke_test() {
    local ok=0 t
    for t in "${tools[@]}"; do
        check "/usr/bin/$t --version" bash -c "[[ \$(/usr/bin/$t --version) == '$t $version' ]]" || ok=1
    done
    check "man tn-route renders the installed page" \
        bash -c '[[ $(man -w tn-route) == /usr/share/man/man1/tn-route.1.gz ]] && MANPAGER=cat MANWIDTH=80 man tn-route | grep -q "^EXIT STATUS"' || ok=1
    check "man 5 tn.toml" bash -c '[[ $(man -w 5 tn.toml) == /usr/share/man/man5/tn.toml.5.gz ]]' || ok=1
    for t in "${tools[@]}"; do
        # bash-completion's loader finds the file by the command's name, as in an interactive shell.
        check "completion for $t loads from /usr/share/bash-completion/completions" bash --norc --noprofile -c \
            "[[ -f /usr/share/bash-completion/completions/$t ]] && . /usr/share/bash-completion/bash_completion && __load_completion $t && complete -p $t" || ok=1
    done
    # The host list the SSH tools share is found next to their installed completion files.
    mkdir -p "$smoke/home/.ssh" && echo "smoke-host ssh-ed25519 AAAAC3Nz" >"$smoke/home/.ssh/known_hosts"
    check "tn-keysetup completes a host from known_hosts (installed tn-ssh-hosts.bash)" bash --norc --noprofile -c \
        "HOME=$smoke/home; . /usr/share/bash-completion/bash_completion && __load_completion tn-keysetup && COMP_WORDS=(tn-keysetup smoke-h) COMP_CWORD=1 && _tn_keysetup && [[ \${COMPREPLY[*]} == smoke-host ]]" || ok=1
    # Policies by name, from /usr/share/tn/lua (not from this tree: the binary is /usr/bin's).
    check "tn-watch finds the policy max-restarts by name" bash -c \
        "cd / && env -u TN_LUA_PATH TN_STATE_DIR=$smoke/state /usr/bin/tn-watch run -q --name smoke --policy max-restarts --set max_restarts=0 -- /bin/sh -c 'exit 3'; [[ \$? == 3 ]]" || ok=1
    check "tn-watch refuses a policy that is not installed (78)" bash -c \
        "cd / && env -u TN_LUA_PATH TN_STATE_DIR=$smoke/state /usr/bin/tn-watch run -q --name smoke --policy no-such-policy -- /bin/true; [[ \$? == 78 ]]" || ok=1
    for p in backoff network max-restarts output-match schedule; do
        check "policy $p installed" test -f "/usr/share/tn/lua/$p.lua" || ok=1
    done
    for u in "${system_units[@]}"; do
        check "systemd-analyze verify /lib/systemd/system/$u" bash -c \
            "out=\$(systemd-analyze verify /lib/systemd/system/$u 2>&1) && [[ -z \$out ]] || { echo \"\$out\"; false; }" || ok=1
    done
    mkdir -m 700 "$smoke/xdg"
    for u in "${user_units[@]}"; do
        # The user manager wants XDG_RUNTIME_DIR even to verify; no running systemd is needed.
        check "systemd-analyze --user verify /usr/lib/systemd/user/$u" bash -c \
            "out=\$(XDG_RUNTIME_DIR=$smoke/xdg systemd-analyze --user verify /usr/lib/systemd/user/$u 2>&1) && [[ -z \$out ]] || { echo \"\$out\"; false; }" || ok=1
    done
    check "examples installed" test -f /usr/share/doc/tn/examples/tn-route/route.toml || ok=1
    return $ok
}

purge_and_check() {
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tn >/dev/null || return 1
    local ok=0 left
    check "dpkg forgot tn" bash -c '! dpkg-query -W -f="\${Status}" tn 2>/dev/null | grep -q installed' || ok=1
    # Every file and folder the package shipped that is tn's own is gone.
    left=$(dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's#^\./#/#' | while read -r p; do
        [[ $p == */ ]] && p=${p%/}
        case $p in */tn*|*/tn.toml*) [[ -e $p || -L $p ]] && echo "$p" ;; esac
    done)
    check "no file of the package left" bash -c "[[ -z '$left' ]] || { echo '$left'; false; }" || ok=1
    check "no unit state left" bash -c '! compgen -G "/var/lib/systemd/deb-systemd-helper-*/*tn-*" && ! compgen -G "/etc/systemd/system/*/tn-*"' || ok=1
    return $ok
}

if ((reuse)) && [[ -f $deb ]]; then echo "deb_check: reusing $deb"; else step "build ${deb##*/}" build; fi
[[ -f $deb ]] || { echo "deb_check: no package, stopping"; exit 1; }
((build_only)) && exit $fail
step "lintian (no errors)" lint
step "apt-get install" install_it
step "smoke test of the installed files" smoke_test
step "apt-get purge, nothing left" purge_and_check
echo "deb_check: total $((SECONDS - T0)) s"
exit $fail
