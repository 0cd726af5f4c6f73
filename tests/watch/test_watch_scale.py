"""tn-watch with 50 supervised names on one host (issue 23; bench/watch/scale.py measures up to 500):
all start, each is its own supervisor with its own child, `status` lists every one, and all stop
cleanly, leaving no supervisor, child or zombie behind. Conditions only, no timing bounds."""
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from watch_helpers import WATCH, State, cmdline, proc_stat, wait_for

N = 50


@pytest.fixture
def st():
    s = State()
    yield s
    s.close()


def status_all(st):
    return json.loads(st.watch("status", "--json", check=True).stdout)


def alive(pid):
    s = proc_stat(pid)
    return s is not None and s[0] != "Z"


def test_fifty_names_start_list_and_stop_cleanly(st):
    names = [f"n{i:02d}" for i in range(N)]
    st.names.update(names)
    # Started 8 at a time, as a login script or a cron minute full of `ensure` lines might.
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda n: st.watch("start", "--name", n, "--", "sleep", "1000000", timeout=120), names))
    assert [r.returncode for r in results] == [0] * N, [r.stderr for r in results if r.returncode]

    def all_up():
        d = status_all(st)
        return d if len(d) == N and all(x["running"] and x["child_pid"] for x in d) else None

    rows = wait_for(all_up, timeout=60, what=f"{N} names running with a child")
    assert sorted(x["name"] for x in rows) == names
    sups = [x["pid"] for x in rows]
    kids = [x["child_pid"] for x in rows]
    assert len(set(sups)) == N and len(set(kids)) == N
    for x in rows:
        assert cmdline(x["pid"])[:1] == [WATCH.encode()]
        # Each child belongs to its own supervisor and leads its own process group.
        state, ppid, pgid = proc_stat(x["child_pid"])
        assert ppid == x["pid"] and pgid == x["child_pid"] and state != "Z"
        assert x["restarts"] == 0 and x["state"] == "running"

    text = st.watch("status", check=True).stdout.splitlines()
    assert text[0].split()[:2] == ["NAME", "STATE"]
    assert sorted(line.split()[0] for line in text[1:]) == names
    assert all(line.split()[1] == "running" for line in text[1:])

    with ThreadPoolExecutor(8) as ex:
        stops = list(ex.map(lambda n: st.watch("stop", "--timeout", "60", n, timeout=120), names))
    assert [r.returncode for r in stops] == [0] * N, [r.stderr for r in stops if r.returncode]
    after = status_all(st)
    assert len(after) == N and not any(x["running"] for x in after)
    assert all(x["state"] == "stopped" and x["pid"] is None for x in after)
    # `stop` waits for the supervisor; its child went before it (SIGTERM to the group, then reaped).
    assert [p for p in sups if alive(p) and cmdline(p)[:1] == [WATCH.encode()]] == []
    assert [p for p in kids if alive(p) and b"sleep" in b"".join(cmdline(p))] == []
    assert os.path.isdir(st.dir)
