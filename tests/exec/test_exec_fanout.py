"""tn-exec on many hosts: 20 aliases of one sshd in a test ssh_config, one unreachable; prefixes, JSON
records, host lists from a file and stdin, put/get fan-out."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
from exec_fixtures import env  # noqa: E402,F401

BAD = "h13"


def ssh_config(env):
    """h01..h20 all reach the test sshd, except h13 which points at a port nobody listens on."""
    path = os.path.join(env.client.dir, "fan_ssh_config")
    dead = harness.free_port()
    with open(path, "w") as f:
        for i in range(1, 21):
            name = f"h{i:02d}"
            port = dead if name == BAD else env.sshd.port
            f.write(f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {env.sshd.user.name}\n\n")
    return path


def hosts():
    return [f"h{i:02d}" for i in range(1, 21)]


def test_twenty_hosts_prefixed_one_unreachable(env):
    cfg = ssh_config(env)
    hosts_file = os.path.join(env.client.dir, "hosts.txt")
    with open(hosts_file, "w") as f:
        f.write("# the fleet\n" + "\n".join(hosts()) + "\n\n")
    r = env.run("run", "--ssh-config", cfg, "--connect-timeout", "5", "-H", "@" + hosts_file, "--parallel", "8",
                "--", "sh", "-c", "echo out; echo err >&2")
    assert r.returncode == 255, r.stderr
    good = [h for h in hosts() if h != BAD]
    assert sorted(r.stdout.splitlines()) == sorted(f"{h}: out" for h in good)
    err_lines = r.stderr.splitlines()
    for h in good:
        assert f"{h}: err" in err_lines
    assert any(BAD in line and "ERROR" in line for line in err_lines), r.stderr


def test_all_good_hosts_exit_zero(env):
    cfg = ssh_config(env)
    good = ",".join(h for h in hosts() if h != BAD)
    r = env.run("run", "--ssh-config", cfg, "-H", good, "--parallel", "8", "true")
    assert r.returncode == 0, r.stderr
    # The largest remote status wins when no host failed on our side.
    r = env.run("run", "--ssh-config", cfg, "-H", "h01,h02", "--shell", "exit 4")
    assert r.returncode == 4


def test_json_records_parse(env):
    cfg = ssh_config(env)
    r = env.run("run", "--ssh-config", cfg, "--connect-timeout", "5", "-H", "@-", "--parallel", "8", "--json",
                "--", "printf", "%s\\n", "line one", "line \"two\"", input="\n".join(hosts()) + "\n")
    assert r.returncode == 255, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    summaries = {x["host"]: x for x in recs if "exit" in x}
    assert set(summaries) == set(hosts())
    assert summaries[BAD]["exit"] == 255 and summaries[BAD]["error"]
    for h in hosts():
        if h == BAD:
            continue
        assert summaries[h]["exit"] == 0 and summaries[h]["error"] is None
        assert isinstance(summaries[h]["duration_ms"], int)
        lines = [x["line"] for x in recs if x.get("host") == h and x.get("stream") == "stdout"]
        assert lines == ["line one", 'line "two"']


def test_put_get_fan_out(env):
    cfg = ssh_config(env)
    src = os.path.join(env.client.dir, "payload.txt")
    with open(src, "w") as f:
        f.write("payload\n")
    # The aliases share one home, so they would race on one temp name: one at a time here.
    r = env.run("put", "--ssh-config", cfg, "-H", "h01,h02,h03", "--parallel", "1", src, "payload.txt")
    assert r.returncode == 0, r.stderr
    assert open(env.remote("payload.txt")).read() == "payload\n"
    out = os.path.join(env.client.dir, "got")
    os.makedirs(out)
    r = env.run("get", "--ssh-config", cfg, "-H", "h01,h02," + BAD, "--connect-timeout", "5", "payload.txt", out)
    assert r.returncode == 255
    for h in ("h01", "h02"):
        assert open(os.path.join(out, h, "payload.txt")).read() == "payload\n"
    assert BAD in r.stderr


def test_file_operations_on_many_hosts(env):
    """ls/mkdir/stat/rm with -H: bare paths, lines prefixed, JSON records carry the host, a missing path
    is 1 for the hosts that miss it; all hosts here are one sshd, so h01 makes what h02 then sees."""
    cfg = ssh_config(env)
    base = ["--ssh-config", cfg, "--connect-timeout", "5"]
    r = env.run("mkdir", *base, "-H", "h01", "-p", "fan/a b")
    assert r.returncode == 0, r.stderr
    r = env.run("ls", *base, "-H", "h01,h02", "fan")
    assert (r.returncode, sorted(r.stdout.splitlines())) == (0, ["h01: a b", "h02: a b"]), r.stderr
    r = env.run("stat", *base, "-H", "h01,h02", "--json", "fan/a b")
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0, r.stderr
    assert sorted(x["host"] for x in recs if x.get("type") == "dir") == ["h01", "h02"]
    r = env.run("rm", *base, "-H", "h01,h02", "-r", "fan")  # h02 finds it gone: 1 for it
    assert r.returncode == 1, r.stderr
    assert not os.path.exists(env.remote("fan"))
    r = env.run("ls", *base, "-H", f"h01,{BAD}", "fan")  # missing on h01 (1), unreachable h13 (255)
    assert r.returncode == 255 and "h01: " in r.stderr and f"{BAD}: " in r.stderr, r.stderr
    r = env.run("ls", *base, "-H", "h01", "h01:fan")
    assert r.returncode == 64 and "bare PATHs" in r.stderr


def test_get_to_stdout_from_many_hosts_is_framed_per_host(env):
    """get ... - with -H: each host's file is that host's output, framed as run frames it ("host: "
    lines, a last line without newline included, or JSON records); a host that fails is reported
    without stopping the others, and no local folder is made."""
    cfg = ssh_config(env)
    base = ["--ssh-config", cfg, "--connect-timeout", "5"]
    with open(env.remote("notes"), "w") as f:
        f.write("one\ntwo")
    env.chown_remote(env.remote("notes"))
    r = env.run("get", *base, "-H", "h01,h02", "notes", "-")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["h01: one", "h01: two", "h02: one", "h02: two"]
    r = env.run("get", *base, "-H", "h01,h02", "--json", "notes", "-")
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0, r.stderr
    for h in ("h01", "h02"):
        assert [x["line"] for x in recs if x.get("host") == h and x.get("stream") == "stdout"] == ["one", "two"]
    r = env.run("get", *base, "-H", f"h01,{BAD}", "notes", "-")
    assert r.returncode == 255 and f"{BAD}: " in r.stderr, r.stderr
    assert sorted(r.stdout.splitlines()) == ["h01: one", "h01: two"]
    assert not os.path.exists("-")  # tn-exec ran in our directory: no "-/h01" folder
