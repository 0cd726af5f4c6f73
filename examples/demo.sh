#!/usr/bin/env bash
# The main job on loopback: a tn-route, one tn-vnet serving a local HTTP server, one tn-vnet using it,
# and a request through the chain (client -> use port -> route -> serving vnet -> HTTP server).
# Usage: bash examples/demo.sh BUILD_DIR [--keep]
# Everything runs in a temp dir and is stopped at the end. On a terminal the demo stays up (dashboard
# included) until Enter; with --keep it stays up until Ctrl-C or SIGTERM; with neither a TTY nor
# --keep (CI, a pipe) it stops right after printing.
set -euo pipefail

build=${1:?usage: demo.sh BUILD_DIR [--keep]}
keep=false
case ${2:-} in
    "") ;;
    --keep) keep=true ;;
    *) echo "usage: demo.sh BUILD_DIR [--keep]" >&2; exit 64 ;;
esac
route_bin=$build/tools/tn-route/tn-route
vnet_bin=$build/tools/tn-vnet/tn-vnet
for b in "$route_bin" "$vnet_bin"; do
    [[ -x $b ]] || { echo "demo: $b is missing: build first (ninja -C $build)" >&2; exit 69; }
done

dir=$(mktemp -d /tmp/tn-demo.XXXXXX)
pids=()
cleanup() {  # newest first, each gone before the next: the vnets end before the route they talk to
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export TN_STATE_DIR=$dir/state

# free_ports N: N distinct loopback ports free a moment ago (held open together, so no two are the same)
free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}
wait_port() {  # wait_port PORT PID: until something accepts on 127.0.0.1:PORT
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "demo: process $2 died" >&2; return 1; }
        sleep 0.05
    done
    echo "demo: nothing listening on 127.0.0.1:$1" >&2; return 1
}

read -r route_port http_port use_port vhost_port dash_port < <(free_ports 5)
token=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')

mkdir -p "$dir/www"
echo "hello from the private host, through tn-route" > "$dir/www/index.html"
python3 -m http.server "$http_port" --bind 127.0.0.1 --directory "$dir/www" >/dev/null 2>&1 &
pids+=($!); wait_port "$http_port" "${pids[-1]}"

cat > "$dir/route.toml" <<TOML
[route]
listen = "127.0.0.1:$route_port"

[[group]]
name = "demo"
token = "$token"
domains = ["demo.localhost"]      # the vhost names this group's serves may claim

[http]
listen = "127.0.0.1:$vhost_port"

[dashboard]
listen = "127.0.0.1:$dash_port"   # loopback: no password needed
TOML
fingerprint=$("$route_bin" -q -c "$dir/route.toml" fingerprint)
"$route_bin" -q -c "$dir/route.toml" &
pids+=($!); wait_port "$route_port" "${pids[-1]}"

common="[route]
address = \"127.0.0.1:$route_port\"
token = \"$token\"
fingerprint = \"$fingerprint\""
cat > "$dir/home.toml" <<TOML
$common

[vnet]
name = "home"
group = "demo"

[[serve]]
name = "web"
id = 700
port = $http_port
info = "demo HTTP server"
custom_domains = ["demo.localhost"]
TOML
cat > "$dir/office.toml" <<TOML
$common

[vnet]
name = "office"
group = "demo"

[[use]]
name = "web"
id = 700
port = $use_port
TOML
"$vnet_bin" -q -c "$dir/home.toml" &
pids+=($!)
"$vnet_bin" -q -c "$dir/office.toml" &
pids+=($!); wait_port "$use_port" "${pids[-1]}"

echo "route      127.0.0.1:$route_port  (TLS, $fingerprint)"
echo "serve 700  home   -> http://127.0.0.1:$http_port"
echo "use   700  office -> 127.0.0.1:$use_port"
echo "vhost      http://demo.localhost:$vhost_port/ -> serve 700 (route [http], Host routing)"
echo "dashboard  http://127.0.0.1:$dash_port/  (/api/status, /metrics)"
echo "files      $dir, removed at exit (TN_STATE_DIR=$TN_STATE_DIR)"
echo "\$ curl http://127.0.0.1:$use_port/"
curl -fsS "http://127.0.0.1:$use_port/"
wait_port "$vhost_port" "${pids[1]}"
echo "\$ curl -H 'Host: demo.localhost' http://127.0.0.1:$vhost_port/"
for _ in $(seq 1 100); do  # the serve registers a moment after the use attaches
    curl -fsS -H 'Host: demo.localhost' "http://127.0.0.1:$vhost_port/" 2>/dev/null && break
    sleep 0.05
done
echo "\$ curl -s http://127.0.0.1:$dash_port/metrics | grep links_total"
curl -fsS "http://127.0.0.1:$dash_port/metrics" | grep '^tn_route_links_total'
echo
"$route_bin" status -c "$dir/route.toml"
# Keep the processes (and the dashboard printed above) up while someone can look at them.
if $keep; then
    echo "demo up: Ctrl-C or SIGTERM stops it"
    # A foreground sleep in a loop, not `wait`: a signal that lands just before `wait` starts could
    # be held until the waited child ends. The trap runs at the latest when this sleep returns.
    while :; do sleep 1; done
elif [[ -t 0 ]]; then
    read -r -p "demo up: press Enter to stop it " _ || true
fi
