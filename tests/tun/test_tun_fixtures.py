"""The test topology itself (tun_net.Topology): every process it started is stopped, by PID, before
its namespaces go, on every path: a name started twice, a setup that fails half way, a stop that is
interrupted (KeyboardInterrupt). A process left in a deleted namespace lives on with PPID 1 in a
namespace nobody can name (found after an earlier session)."""
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tun_net  # noqa: E402
from tun_net import harness  # noqa: E402

STOP = harness.stop_process  # the real one, also while a test replaces it


def namespaces():
    return harness.run(["ip", "netns", "list"]).stdout


def server(t, host, tun, port):
    """A real tn-tun server in namespace `host`, started as "server", running once its socket answers."""
    peer = t.keypair("peer")
    t.keypair("server")
    conf = t.write(f"{tun}.toml", f'[server]\nlisten = "0.0.0.0:{port}"\nsubnet = "10.97.{port % 200}.0/24"\n'
                                  f'tun = "{tun}"\nprivate_key_file = "{t.path("server.key")}"\n'
                                  f'[[peer]]\nname = "a"\npublic_key = "{peer}"\n')
    proc = t.start("server", host, "server", "-c", conf)
    t.wait_for(f"server on {tun}", lambda: subprocess.run(
        [t.tool, "status", "--json", "--tun", tun], check=True, capture_output=True, env=t.env("server"), timeout=10))
    assert proc.poll() is None, t.log("server")
    return proc


@pytest.fixture()
def left():
    """The processes a test started; any still running afterwards (the bug) are stopped here, by PID."""
    procs = []
    yield procs
    for p in procs:
        STOP(p)


def test_a_process_whose_name_a_later_start_took_is_stopped_on_close(left):
    tun_net.skip_unless_possible()
    t = tun_net.Topology(names=(), hub=False)
    try:
        ns = t.add_ns("srv", "tnfx").name
        left.append(server(t, "srv", "tnfx0", 51830))
        left.append(server(t, "srv", "tnfx1", 51831))  # a test that restarts "server" while the first runs
    finally:
        t.close()
    assert [p.poll() is None for p in left] == [False, False]
    assert ns not in namespaces()


def test_a_setup_that_fails_after_starting_a_server_stops_it(left):
    tun_net.skip_unless_possible()
    with pytest.raises(RuntimeError, match="setup failed"):
        with tun_net.Topology(names=(), hub=False) as t:
            ns = t.add_ns("srv", "tnfx").name
            left.append(server(t, "srv", "tnfx0", 51832))
            raise RuntimeError("setup failed")
    assert left[0].poll() is not None
    assert ns not in namespaces()


def test_a_topology_that_fails_half_way_removes_what_it_made(monkeypatch):
    tun_net.skip_unless_possible()
    made, real = [], harness.Netns

    def netns(prefix):
        if len(made) == 2:
            raise KeyboardInterrupt  # as if ^C came while the third namespace was being made
        made.append(real(prefix))
        return made[-1]

    monkeypatch.setattr(harness, "Netns", netns)
    with pytest.raises(KeyboardInterrupt):
        tun_net.Topology(names=("a", "b"))
    listed = namespaces()
    assert len(made) == 2 and not [ns.name for ns in made if ns.name in listed]


def test_an_interrupted_stop_still_stops_the_rest_and_removes_the_namespaces(monkeypatch, left):
    tun_net.skip_unless_possible()
    t = tun_net.Topology(names=(), hub=False)
    ns = t.add_ns("srv", "tnfx").name
    left.append(t.start("a", "srv", "server", "-c", "/nonexistent"))  # exits at once (78): nothing to stop
    sleepers = [t.spawn("srv", "sleep", "600") for _ in range(2)]
    left.extend(sleepers)
    def interrupted(proc, grace=3.0):
        if proc is sleepers[1]:
            raise KeyboardInterrupt  # ^C while close() waits for the newest one
        STOP(proc, grace)

    monkeypatch.setattr(harness, "stop_process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        t.close()
    assert [p.poll() for p in sleepers] == [-signal.SIGTERM, -signal.SIGKILL]
    assert ns not in namespaces()
