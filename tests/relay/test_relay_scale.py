"""One tn-route, many vnets (issue 23, the small CI version of bench/relay/scale.py): 200 simulated
vnets from one process (bench/relay's tn-route-agents, on lib/relay's own wire, proofs and streams;
each its own TLS control connection pinned to the route's fingerprint, a serve, heartbeats) in four
groups, and 2,000 idle proxied connections through two remote_ports, the generator holding both the
client and the serving link of each. Every vnet must register and every connection bind; status
--json must list them all, whole and paged; after a kill -9 and a restart on the same port every vnet
must be back (with tn-vnet's own reconnect backoff), each once. Waits on conditions only; no timing
bound."""
import json
import os
import resource
import socket
import subprocess
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import relay_env  # noqa: E402

N, M, PER_GROUP, SERVING = 200, 2000, 50, 2
TOKEN = relay_env.TOKEN


def agents_tool():
    path = os.path.join(os.environ.get("TN_BUILD_ROOT", ""), "bench", "relay", "tn-route-agents")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not built")
    return path


def nofile_to_hard():
    """The route holds two descriptors per proxied connection: lift its soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Agents:
    """tn-route-agents; `last` is its newest JSON counter line."""

    def __init__(self, cmd, env):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.last = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.last = json.loads(line)

    def until(self, pred, what):
        def ok():
            assert self.p.poll() is None, f"tn-route-agents exited: {self.p.stderr.read()}"
            return bool(self.last) and pred(self.last)
        relay_env.wait_for(ok, timeout=300, what=f"{what} (last counters: {self.last})")


@pytest.fixture
def world():
    groups = [(f"s{g}", TOKEN) for g in range(N // PER_GROUP)]
    relay = relay_env.Relay(groups=groups)
    relay.route_preexec = nofile_to_hard
    agents = None
    try:
        relay.start_route()
        token_file = os.path.join(relay.dir, "token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        base = relay_env.harness.free_port_range(SERVING)
        agents = Agents([agents_tool(), "--route", f"127.0.0.1:{relay.port}", "--fingerprint", relay.fingerprint, "--token-file", token_file,
                         "--vnets", str(N), "--per-group", str(PER_GROUP), "--serving", str(SERVING), "--remote-port", str(base),
                         "--conns", str(M), "--stats-ms", "100", "--open-at-once"], relay.env())
        yield relay, agents
    finally:
        if agents:
            relay_env.harness.stop_process(agents.p)
        relay.close()


def page_through(relay, limit):
    """Every vnet through status --json --limit pages; checks each page's shape on the way."""
    ids, after, pages = [], 0, 0
    while True:
        r = relay_env.run_tool(relay, relay_env.ROUTE, "status", "--json", "--limit", str(limit), "--after", str(after),
                               "-c", os.path.join(relay.dir, "route.toml"))
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        page = [v["id"] for v in doc["vnets"]]
        assert len(page) <= limit and page == sorted(page) and all(i > after for i in page)
        assert doc["vnet_count"] == N
        ids += page
        pages += 1
        if doc["next_after"] is None:
            return ids, pages
        assert doc["next_after"] == page[-1]
        after = doc["next_after"]


def test_route_holds_many_vnets_and_connections_and_takes_them_back_after_a_restart(world):
    relay, agents = world
    agents.until(lambda s: s["registered"] == N and s["links_ok"] == M, "every vnet registered and every connection bound")
    assert agents.last["refused"] == 0 and agents.last["links_failed"] == 0
    assert agents.last["clients_failed"] == 0 and agents.last["clients_closed"] == 0

    doc = relay.status()
    assert len(doc["vnets"]) == N
    assert "next_after" not in doc  # the whole document stays as it always was without --limit
    assert doc["links"]["active"] == M
    assert all(len(v["serves"]) == 1 for v in doc["vnets"])
    assert len({(v["group"], v["name"]) for v in doc["vnets"]}) == N
    ids, pages = page_through(relay, 64)
    assert ids == [v["id"] for v in doc["vnets"]] and pages == 4

    # kill -9 and the same port again: every vnet comes back by itself, each exactly once.
    relay.kill9("route")
    agents.until(lambda s: s["registered"] == 0, "every vnet noticed the route died")
    relay.start_route()
    agents.until(lambda s: s["registered"] == N, "every vnet registered again")
    doc = relay.status()
    assert len(doc["vnets"]) == N
    assert len({(v["group"], v["name"]) for v in doc["vnets"]}) == N
    assert sorted(page_through(relay, 64)[0]) == sorted(v["id"] for v in doc["vnets"])
