"""tn-exec's command line as users write it: common options before the subcommand with `--`, unknown
flags named, -H with one host keeps its prefix, and the user@host:port:PATH that messages print is
accepted back."""
import json
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env  # noqa: E402,F401


@pytest.mark.parametrize("common", [["-v"], ["-q"], ["--log-format", "json"], ["--json"], ["-v", "--json"]])
def test_common_options_before_run_keep_double_dash(env, common):
    r = env.run(*common, "run", *env.base, env.target, "--", "echo", "hi", "-v")
    assert r.returncode == 0, r.stderr
    if "--json" in common:
        records = [json.loads(line) for line in r.stdout.splitlines()]
        assert [x["line"] for x in records if "line" in x] == ["hi -v"]
        assert [x["exit"] for x in records if "exit" in x] == [0]
    else:
        assert r.stdout == "hi -v\n"


def test_unknown_option_is_named(env):
    r = env.run("run", "--timeot", "3", *env.base, env.target, "true")
    assert r.returncode == 64
    assert "unknown option '--timeot' (did you mean '--timeout'?)" in r.stderr


def test_one_host_with_H_keeps_the_prefix(env):
    r = env.run("run", *env.base, "-H", env.target, "--", "sh", "-c", "echo out; echo err >&2")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{env.target}: out\n"
    assert f"{env.target}: err\n" in r.stderr


def test_printed_target_is_accepted_back(env):
    # A failure names user@host:port:PATH; that very string works as a get source.
    r = env.run("get", *env.base, f"{env.target}:missing-file", "/tmp")
    assert r.returncode == 255
    shown = f"{env.target}:{env.sshd.port}:missing-file"
    assert shown in r.stderr, r.stderr
    with open(env.remote("present"), "w") as f:
        f.write("data\n")
    d = tempfile.mkdtemp(prefix="tn-exec-cli-")
    try:
        r = env.run("get", shown.replace("missing-file", "present"), d)  # no -p: the port is in the target
        assert r.returncode == 0, r.stderr
        assert open(os.path.join(d, "present")).read() == "data\n"
        r = env.run("put", os.path.join(d, "present"), f"{env.target}:{env.sshd.port}:copied")
        assert r.returncode == 0, r.stderr
        assert open(env.remote("copied")).read() == "data\n"
        r = env.run("run", f"{env.target}:{env.sshd.port}", "--", "echo", "ok")
        assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
