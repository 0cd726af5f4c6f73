"""tn-watch against real processes: restarts, policies, single instance, stop semantics, status, logs."""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time

import pytest

from watch_helpers import EXAMPLES, WATCH, State, cmdline, pids_in_group, proc_stat, wait_for, zombie_children

FAST = ["--backoff-initial", "0.1", "--backoff-max", "0.4", "--stable-after", "100"]


@pytest.fixture
def st():
    s = State()
    yield s
    s.close()


def listener(port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def test_crashing_child_is_restarted_per_backoff_and_reaped(st):
    st.start("crash", *FAST, command=["sh", "-c", "echo run; exit 3"])
    wait_for(lambda: st.status("crash")["restarts"] >= 4, what="4 restarts")
    log = st.log("crash")
    delays = [line.split("restarting in ")[1] for line in log.splitlines() if "restarting in " in line]
    assert delays[:4] == ["0.100s", "0.200s", "0.400s", "0.400s"], log
    assert "stdout: run" in log
    s = st.status("crash")
    assert s["running"] and s["last_exit"]["code"] == 3 and s["last_exit"]["text"] == "exit 3"
    assert zombie_children(s["pid"]) == []


def test_status_json_counts_restarts_and_run_gives_the_exit_code(st):
    count = st.path("count")
    r = st.watch("run", "--name", "counted", "--backoff-initial", "0", "--policy", "max-restarts.lua",
                 "--set", "max_restarts=3", "--set", "restart_window=0",
                 "--", "sh", "-c", f"echo x >> {count}; exit 4")
    assert r.returncode == 4, r.stderr
    with open(count) as f:
        runs = len(f.read().split())
    assert runs == 4
    s = st.status("counted")
    assert s["restarts"] == runs - 1
    assert s["running"] is False and s["pid"] is None and s["last_exit"]["code"] == 4
    assert "giving up" in r.stderr
    # The whole-list form is one JSON document too.
    doc = json.loads(st.watch("status", "--json", check=True).stdout)
    assert [x["name"] for x in doc] == ["counted"]


def test_network_policy_follows_the_probe_target(st):
    lsock = listener()
    port = lsock.getsockname()[1]
    # A closed port refuses at once, so a long probe timeout costs nothing here; a short one failed on a
    # loaded machine, where the supervisor was not scheduled within it and saw every probe time out.
    st.start("net", "--policy", "network.lua", "--set", f"probe=127.0.0.1:{port}", "--set", "probe_interval=0.05",
             "--set", "probe_timeout_ms=10000", "--grace", "1", command=["sleep", "1000"])
    first = wait_for(lambda: st.status("net")["child_pid"], what="child")
    lsock.close()  # the target disappears: the child is stopped and held
    wait_for(lambda: st.status("net")["state"] == "held", what="held")
    assert st.status("net")["child_pid"] is None
    wait_for(lambda: proc_stat(first) is None, what="old child gone")
    st.wait_log("net", "unreachable")
    lsock = listener(port)  # it returns: the child is started again
    try:
        second = wait_for(lambda: st.status("net")["child_pid"], what="child restarted")
        assert second != first
        assert st.status("net")["state"] == "running"
        st.wait_log("net", "reachable again")
    finally:
        lsock.close()


def test_output_match_restarts_on_a_pattern(st):
    st.start("match", "--policy", "output-match.lua", "--set", "pattern=FATAL %d+", "--grace", "1",
             command=["sh", "-c", "echo starting; echo 'FATAL 42' >&2; exec sleep 1000"])
    wait_for(lambda: st.status("match")["restarts"] >= 1, what="a restart")
    log = st.log("match")
    assert "stderr: FATAL 42" in log and "matched" in log and "policy asks for a restart" in log


BAD_POLICIES = {
    "syntax": ("function on_exit(child\n  return nil\nend\n", "syntax.lua:2:"),
    "runtime": ("function on_exit(child, status, decision)\n  local t = nil\n  return t.delay\nend\n",
                "runtime.lua:3:"),
    "loop": ("function on_start(child)\n  local n = 0\n  while true do n = n + 1 end\nend\n", "loop.lua:3:"),
}


@pytest.mark.parametrize("kind", sorted(BAD_POLICIES))
def test_a_broken_policy_leaves_the_supervisor_on_the_default(st, kind):
    source, where = BAD_POLICIES[kind]
    path = st.path(f"{kind}.lua")
    with open(path, "w") as f:
        f.write(source)
    st.start(kind, *FAST, "--instruction-limit", "100000", "--policy", path, command=["sh", "-c", "exit 1"])
    wait_for(lambda: st.status(kind)["restarts"] >= 3, what="restarts on the default policy")
    assert st.status(kind)["running"]
    log = st.log(kind)
    errors = [line for line in log.splitlines() if "default policy takes over" in line]
    assert len(errors) == 1, log
    assert where in errors[0] and "ERROR" in errors[0]
    if kind == "loop":
        assert "instruction limit exceeded" in errors[0]


def test_twenty_concurrent_ensures_leave_one_supervisor(st):
    args = ["ensure", "--name", "race", "--", "sleep", "1000"]
    st.names.add("race")
    procs = [st.popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(20)]
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert err == b"" or b"started race" in err
    s = st.status("race")
    assert s["running"]
    supervisors = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                   if proc_stat(pid) and proc_stat(pid)[0] != "Z"
                   and cmdline(pid)[:1] == [WATCH.encode()] and b"race" in cmdline(pid)]
    assert supervisors == [s["pid"]]
    children = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if proc_stat(pid) and proc_stat(pid)[1] == s["pid"] and proc_stat(pid)[0] != "Z"]
    assert children == [s["child_pid"]]
    # And again, with one running: a no-op.
    assert st.watch("ensure", "--name", "race", "--", "sleep", "1000").returncode == 0
    assert st.status("race")["pid"] == s["pid"]
    assert st.watch("start", "--name", "race", "--", "sleep", "1000").returncode == 75


def test_stop_leaves_no_process_of_the_group(st):
    st.start("group", command=["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    child = wait_for(lambda: st.status("group")["child_pid"], what="child")
    wait_for(lambda: len(pids_in_group(child)) == 3, what="three processes in the group")
    sup = st.status("group")["pid"]
    r = st.watch("stop", "group", check=True)
    assert "stopped group" in r.stderr
    assert pids_in_group(child) == []
    assert proc_stat(sup) is None or proc_stat(sup)[0] == "Z"  # gone (init may not have reaped it yet)
    assert st.status("group")["running"] is False
    assert st.watch("stop", "group").returncode == 0  # idempotent


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(st):
    st.start("stubborn", "--grace", "0.3", command=["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
    st.wait_log("stubborn", "stdout: ready")
    child = st.status("stubborn")["child_pid"]
    st.watch("stop", "stubborn", check=True)
    assert pids_in_group(child) == []
    assert "ended: signal 9 (SIGKILL)" in st.log("stubborn")


def test_run_in_the_foreground_stops_cleanly_on_sigint(st):
    p = st.popen("run", "--name", "fg", "--", "sh", "-c", "echo hello; exec sleep 1000",
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"hello\n"  # child lines are echoed raw on stdout
    child = wait_for(lambda: st.status("fg")["child_pid"], what="child")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 0
    assert pids_in_group(child) == []
    assert b"stopping on SIGINT" in p.stderr.read()


def test_logs_rotate_and_follow(st):
    st.start("chatty", "--log-size", "4096", "--log-keep", "2",
             command=["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done; exec sleep 1000"])
    st.wait_log("chatty", "line-399")
    names = sorted(os.listdir(st.dir))
    assert "chatty.log.1" in names and "chatty.log.2" in names and "chatty.log.3" not in names
    assert all(os.path.getsize(os.path.join(st.dir, n)) <= 4096 for n in names if n.startswith("chatty.log"))
    out = st.watch("logs", "chatty", check=True).stdout
    assert "line-399" in out and out.index("line-398") < out.index("line-399")

    st.start("ticker", command=["sh", "-c", "echo first; sleep 0.3; echo second; exec sleep 1000"])
    st.wait_log("ticker", "first")
    follow = st.popen("logs", "-f", "ticker", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = b""
        while b"stdout: second" not in seen:
            line = follow.stdout.readline()
            assert line, "logs -f ended early"
            seen += line
        assert b"stdout: first" in seen
    finally:
        follow.kill()
        follow.wait()


def test_usage_and_config_errors(st):
    assert st.watch("run", "--name", "bad/name", "--", "true").returncode == 64
    assert st.watch("run", "--", ).returncode == 64
    assert st.watch("run", "--grace", "-1", "--", "true").returncode == 64
    r = st.watch("run", "--policy", st.path("missing.lua"), "--", "true")
    assert r.returncode == 78 and "missing.lua" in r.stderr
    r = st.watch("start", "--name", "nocmd", "--", "/nonexistent/cmd")
    assert r.returncode == 69 and "/nonexistent/cmd" in r.stderr
    r = st.watch("status", "nosuch")
    assert r.returncode == 1 and "no supervisor named nosuch" in r.stderr


def example_command(path):
    """The tn-watch words of an example line, with the state dir prefix and cron fields dropped."""
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines()
             if ln.strip() and not ln.startswith("#") and not re.match(r"^[A-Z_]+=", ln)]  # cron's PATH=
    assert len(lines) == 1, lines
    words = shlex.split(lines[0])
    return words[words.index("tn-watch") + 1:]


@pytest.mark.parametrize("example", ["bashrc", "crontab"])
def test_the_bashrc_and_cron_examples_keep_one_supervisor(st, example):
    words = example_command(os.path.join(EXAMPLES, example))
    assert words[0] == "ensure"
    sep = words.index("--")
    opts, command = words[1:sep], words[sep + 1:]
    assert command[:2] == ["tn-forward", "--once"]
    lsock = listener()
    try:
        # The probe target and the tunnel are replaced by local stand-ins; the rest is the line as shipped.
        opts = [f"probe=127.0.0.1:{lsock.getsockname()[1]}" if o.startswith("probe=") else o for o in opts]
        name = opts[opts.index("--name") + 1]
        st.names.add(name)
        for _ in range(3):  # a new shell each time, or a cron minute
            r = st.watch("ensure", *opts, "--", "sleep", "1000")
            assert r.returncode == 0, r.stderr
        s = wait_for(lambda: st.status(name)["child_pid"] and st.status(name), what="tunnel child")
        assert s["restarts"] == 0 and s["command"] == ["sleep", "1000"]
        assert "switched off" not in st.log(name)
    finally:
        lsock.close()


def counting(count, script):
    """A shell command that appends a line to `count` on every run, then runs `script`."""
    return ["sh", "-c", f"echo run >> {shlex.quote(count)}; {script}"]


def runs_in(count):
    with open(count) as f:
        return len(f.read().split())


def test_the_example_policy_gives_up_after_five_lost_connections(st):
    # examples/tn-watch/restart-on-error.lua promises five restarts on "connection lost", then no more;
    # its restarts come from child:restart(), which once skipped on_exit, so it never gave up.
    count = st.path("count")
    r = st.watch("run", "--name", "example", *FAST, "--grace", "0.5", "--policy",
                 os.path.join(EXAMPLES, "restart-on-error.lua"),
                 "--", *counting(count, "echo connection lost; exec sleep 1000"), timeout=120)
    assert runs_in(count) == 5, r.stderr
    assert r.returncode == 128 + signal.SIGTERM, r.stderr
    assert "connection lost (5), restarting example" in r.stderr
    assert "lost the connection five times, giving up" in r.stderr
    assert st.status("example")["restarts"] == 4


def test_the_man_page_example_output_match_and_max_restarts_compose(st):
    # tn-watch(1): --policy output-match.lua --set pattern=FATAL --policy max-restarts.lua
    # --set max_restarts=3, over a server that prints FATAL and exits. It once restarted ~600 times in 3 s.
    count = st.path("count")
    r = st.watch("run", "--name", "server", *FAST, "--policy", "output-match.lua", "--set", "pattern=FATAL",
                 "--policy", "max-restarts.lua", "--set", "max_restarts=3",
                 "--", *counting(count, "echo 'FATAL: cannot bind'; exit 1"), timeout=120)
    assert runs_in(count) == 4, r.stderr
    assert r.returncode in (1, 128 + signal.SIGTERM), r.stderr
    assert "giving up" in r.stderr
    delays = [line.split("restarting in ")[1] for line in r.stderr.splitlines() if "restarting in " in line]
    assert delays == ["0.100s", "0.200s", "0.400s"], r.stderr  # the backoff applied to every restart
    s = st.status("server")
    assert s["restarts"] == 3 and not s["running"]
    table = st.watch("status", check=True).stdout.splitlines()
    assert table[1].split()[:5] == ["server", "stopped", "-", "-", "3"], table


@pytest.mark.parametrize("code,why", [(0, "exited 0 (finished)"),
                                      (77, "exited 77 (authentication or permission refused)"),
                                      (78, "exited 78 (configuration error)")])
def test_the_default_does_not_restart_after_0_77_or_78(st, code, why):
    count = st.path("count")
    r = st.watch("run", "--name", f"code{code}", *FAST, "--policy", "backoff.lua",
                 "--", *counting(count, f"exit {code}"), timeout=60)
    assert r.returncode == code, r.stderr
    assert runs_in(count) == 1
    assert why in r.stderr and "not restarting" in r.stderr


def test_a_policy_can_restart_after_77_all_the_same(st):
    count = st.path("count")
    path = st.path("retry-auth.lua")
    with open(path, "w") as f:
        f.write("function on_exit(child, status, decision)\n"
                "  if status.code == 77 then return { restart = true } end\nend\n")
    r = st.watch("run", "--name", "retry", *FAST, "--policy", path, "--policy", "max-restarts.lua",
                 "--set", "max_restarts=2", "--", *counting(count, "exit 77"), timeout=60)
    assert r.returncode == 77 and runs_in(count) == 3, r.stderr


def test_policy_names_resolve_from_the_build_tree_and_a_miss_names_the_dirs(st):
    env = {k: v for k, v in st.env.items() if k != "TN_LUA_PATH"}
    r = subprocess.run([WATCH, "run", "--name", "bt", "--policy", "max-restarts.lua", "--set", "max_restarts=0",
                        "--", "sh", "-c", "exit 1"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "giving up" in r.stderr, r.stderr
    r = subprocess.run([WATCH, "run", "--policy", "nosuch.lua", "--", "true"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 78, r.stderr
    assert "nosuch.lua" in r.stderr and "/share/tn/lua" in r.stderr and os.path.join(
        os.environ["TN_SOURCE_ROOT"], "lua") in r.stderr, r.stderr


def test_sighup_reloads_the_policies(st):
    path = st.path("versioned.lua")
    with open(path, "w") as f:
        f.write('tn.log("info", "policy v1 loaded")\n')
    st.start("hup", "--policy", path, command=["sleep", "1000"])
    st.wait_log("hup", "policy v1 loaded")
    with open(path, "w") as f:
        f.write('tn.log("info", "policy v2 loaded")\n')
    child = st.status("hup")["child_pid"]
    os.kill(st.status("hup")["pid"], signal.SIGHUP)
    st.wait_log("hup", "policy v2 loaded")
    assert st.status("hup")["child_pid"] == child  # a reload does not touch the child


def test_a_child_left_by_a_killed_supervisor_is_not_duplicated(st):
    st.start("orphan", command=["sleep", "1000"])
    s = st.status("orphan")
    os.kill(s["pid"], signal.SIGKILL)  # the supervisor dies hard; its child lives on in its own group
    wait_for(lambda: not st.status("orphan")["running"], what="supervisor gone")
    assert proc_stat(s["child_pid"]) is not None
    r = st.watch("ensure", "--name", "orphan", "--", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: proc_stat(s["child_pid"]) is None or proc_stat(s["child_pid"])[0] == "Z", what="old child killed")
    new = wait_for(lambda: st.status("orphan")["child_pid"], what="new child")
    assert new != s["child_pid"]
    assert "left behind by a supervisor that died" in st.log("orphan")


def test_a_silent_crash_loop_still_rotates_the_log(st):
    # Only the supervisor's own lines go to the log here; they must be rotated like the child's.
    st.start("silent", "--backoff-initial", "0", "--log-size", "4096", "--log-keep", "1",
             command=["sh", "-c", "exit 1"])
    wait_for(lambda: os.path.exists(os.path.join(st.dir, "silent.log.1")), what="a rotation")
    # Restarts are at least 0.1 s apart: 30 of them rotate the log a few times.
    wait_for(lambda: st.status("silent")["restarts"] > 30, timeout=60, what="many restarts")
    for n in ("silent.log", "silent.log.1"):
        assert os.path.getsize(os.path.join(st.dir, n)) < 4096 + 1024
    assert not os.path.exists(os.path.join(st.dir, "silent.log.2"))


def test_schedule_restarts_every_interval_and_status_prints_a_table(st):
    st.start("periodic", "--policy", "schedule.lua", "--set", "every=0.3", "--grace", "0.5", command=["sleep", "1000"])
    wait_for(lambda: st.status("periodic")["restarts"] >= 2, what="two scheduled restarts")
    assert "schedule.lua: restarting after" in st.log("periodic")
    table = st.watch("status", check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "STATE", "PID"]
    row = [r for r in table if r.startswith("periodic ")]
    assert len(row) == 1 and str(st.status("periodic")["pid"]) in row[0]


def test_the_child_leads_its_own_session_and_group(st):
    st.start("session", command=["sleep", "1000"])
    child = wait_for(lambda: st.status("session")["child_pid"], what="child")
    with open(f"/proc/{child}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    pgid, sid, tty = int(fields[2]), int(fields[3]), int(fields[4])
    assert (pgid, sid, tty) == (child, child, 0)  # no controlling terminal: /dev/tty cannot stop it
