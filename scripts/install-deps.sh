#!/bin/bash
# Installs the Debian 12 packages tn builds, tests and benchmarks with; only what is missing.
# chromium: the dashboard test renders the page in it (headless).
#   --bench  adds the benchmark anchors; --deb adds what building and checking the .deb takes.
set -euo pipefail
build=(meson ninja-build pkg-config g++ libcli11-dev libssh-dev libboost-dev libboost-filesystem-dev
       libtomlplusplus-dev liblua5.4-dev catch2 libsodium-dev libssl-dev libsystemd-dev)
test=(openssh-server openssh-client iproute2 curl socat python3 python3-pytest man-db groff-base
      bash-completion passwd procps iputils-ping netcat-openbsd dropbear-bin python3-cryptography jq
      clang libclang-rt-dev nftables dnsutils systemd sudo chromium)
# dpkg-buildpackage checks build-essential itself; lintian for the package's errors.
deb=(build-essential debhelper dpkg-dev lintian)
bench=(iperf3 autossh python3-paramiko python3-openssl gdb wireguard-go openvpn hyperfine)
want=("${build[@]}" "${test[@]}")
for a in "$@"; do
    case $a in
    --bench) want+=("${bench[@]}") ;;
    --deb) want+=("${deb[@]}") ;;
    *) echo "usage: install-deps.sh [--bench] [--deb]" >&2; exit 64 ;;
    esac
done
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    [[ $(id -u) == 0 ]] || { echo "need root to install packages (or install them yourself)" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
