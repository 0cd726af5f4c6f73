"""The CLI contract of SPEC §2 over all seven tools, with the real binaries: --help/--version exit 0,
usage errors exit 64 and name the unknown flag (with the closest valid one), common options work
before and after the subcommand, stdout carries only data (nothing on a failure, logs on stderr),
--json and --log-format json parse, nothing prompts when stdin is closed. Then a pipeline:
`tn-exec -H @hosts --json run -- ...` consumed by jq with the exit codes kept."""
import json
import os
import shutil
import subprocess

import pytest

import harness

TOOLS = ["tn-keysetup", "tn-exec", "tn-forward", "tn-watch", "tn-tun", "tn-route", "tn-vnet"]
SUBCOMMANDS = {
    "tn-exec": ["run", "put", "get", "persist"],
    "tn-watch": ["run", "start", "ensure", "stop", "status", "logs"],
    "tn-tun": ["keygen", "pubkey", "server", "client", "status"],
    "tn-route": ["status", "fingerprint", "run"],
    "tn-vnet": ["run", "ctl", "shell"],
}
# A command of each tool that parses, then fails without a peer: (words before the common options
# go, words after). The failure is logged on stderr; stdout stays empty.
FAILING = {
    "tn-keysetup": ([], ["--connect-timeout", "5", "-p", "1", "127.0.0.1"]),
    "tn-exec": (["run"], ["-p", "1", "127.0.0.1", "--", "true"]),
    "tn-forward": ([], ["-c", "/nonexistent/tn-contract.toml"]),
    "tn-tun": (["status"], []),
    "tn-route": (["status"], ["-c", "/nonexistent/tn-contract.toml"]),
    "tn-vnet": (["ctl"], ["show"]),
    "tn-watch": (["logs"], ["tn-contract-none"]),
}
# Commands that report state as one JSON document without any peer.
JSON_OFFLINE = {
    "tn-exec": ["persist", "list"],
    "tn-watch": ["status"],
}


class Runner:
    def __init__(self):
        self.home = harness.ClientHome()

    def __call__(self, tool, *args, closed_stdin=True, timeout=60):
        # `<&-`: stdin is not even /dev/null, as for a daemon started without one.
        cmd = ["sh", "-c", 'exec "$@" <&-', "sh", harness.tool(tool), *args] if closed_stdin else [harness.tool(tool), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.home.env(),
                              stdin=subprocess.DEVNULL)


@pytest.fixture
def run():
    r = Runner()
    yield r
    r.home.close()


@pytest.mark.parametrize("tool", TOOLS)
def test_help_and_version_exit_0(run, tool):
    r = run(tool, "--help")
    assert r.returncode == 0 and "Usage:" in r.stdout and r.stderr == ""
    r = run(tool, "--version")
    assert (r.returncode, r.stdout.split()[0], r.stderr) == (0, tool, "")
    for sub in SUBCOMMANDS.get(tool, []):
        r = run(tool, sub, "--help")
        assert r.returncode == 0 and r.stdout and r.stderr == "", (sub, r.stderr)


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_flag_is_named_with_a_suggestion(run, tool):
    pre, post = FAILING[tool]
    # After `--`, tn-exec's words belong to the remote command: there it goes before them.
    last = [*pre, *post, "--verbsoe"] if tool != "tn-exec" else [*pre, "-p", "1", "--verbsoe", *post[2:]]
    for words in ([*pre, "--verbsoe", *post], last, ["--verbsoe", *pre, *post]):
        r = run(tool, *words)
        assert r.returncode == 64, (words, r.stderr)
        assert r.stdout == ""
        assert "unknown option '--verbsoe' (did you mean '--verbose'?)" in r.stderr, (words, r.stderr)


@pytest.mark.parametrize("tool", TOOLS)
def test_failures_keep_stdout_empty_and_log_on_stderr(run, tool):
    pre, post = FAILING[tool]
    r = run(tool, *pre, *post)
    assert r.returncode not in (0, 64), r.stderr
    assert r.stdout == ""
    assert "ERROR" in r.stderr or "error" in r.stderr


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("common", [["-v"], ["-q"], ["--log-format", "json"], ["-v", "-v", "--log-format=json"]])
def test_common_options_before_or_after_the_subcommand(run, tool, common):
    pre, post = FAILING[tool]
    plain = run(tool, *pre, *post).returncode
    before = run(tool, *common, *pre, *post)
    after = run(tool, *pre, *post, *common) if tool != "tn-exec" else run(tool, *pre, *common, *post)
    for r in (before, after):
        assert r.returncode == plain, (common, r.stderr)
        assert r.stdout == ""
        if "--log-format" in " ".join(common):
            for line in r.stderr.splitlines():
                json.loads(line)  # every log line is one JSON object


@pytest.mark.parametrize("tool", sorted(JSON_OFFLINE))
def test_json_parses_in_either_place(run, tool):
    words = JSON_OFFLINE[tool]
    for args in ([*words, "--json"], ["--json", *words], [words[0], "--json", *words[1:]]):
        r = run(tool, *args)
        assert r.returncode == 0, (args, r.stderr)
        json.loads(r.stdout)


def test_tn_exec_double_dash_after_common_options(run):
    # `tn-exec -v run box -- echo hi` once said "arguments were not expected: hi echo".
    for common in (["-v"], ["-q"], ["--log-format", "json"], ["--json"]):
        r = run("tn-exec", *common, "run", "-p", "1", "127.0.0.1", "--", "echo", "hi")
        assert r.returncode == 255, (common, r.stderr)
        assert "not expected" not in r.stderr


def test_no_prompt_without_a_tty(run, sshd_password):
    # A password would be needed; stdin is closed: both tools say so and exit instead of waiting.
    run.home.trust(sshd_password)
    target = f"{sshd_password.user.name}@127.0.0.1"
    r = run("tn-keysetup", "-p", str(sshd_password.port), target, timeout=60)
    assert r.returncode == 77 and r.stdout == "", r.stderr
    assert "no password available" in r.stderr
    r = run("tn-exec", "run", "-p", str(sshd_password.port), target, "--", "true", timeout=60)
    assert r.returncode == 255 and r.stdout == "", r.stderr
    assert "authentication refused" in r.stderr


@pytest.fixture
def pipeline(run, sshd):
    run.home.trust(sshd)
    sshd.user.authorize(run.home.key())
    return run, os.path.join(run.home.dir, "hosts"), sshd.user.name, sshd


def sh_pipeline(run, script):
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    return subprocess.run(["bash", "-c", "set -o pipefail\n" + script], capture_output=True, text=True, timeout=120,
                          env=run.home.env(TN_EXEC=harness.tool("tn-exec")), stdin=subprocess.DEVNULL)


def test_pipeline_through_jq_keeps_exit_codes(pipeline):
    run, hosts, user, sshd = pipeline
    # Two names for the same server (one takes its user from -l).
    with open(hosts, "w") as f:
        f.write(f"# hosts\n{user}@127.0.0.1:{sshd.port}\n127.0.0.1:{sshd.port}\n")
    r = sh_pipeline(run, f'"$TN_EXEC" -l {user} -H @{hosts} --json run -- sh -c "echo out; echo err >&2; exit 3" '
                         "| jq -c 'select(.exit != null) | {host, exit}'")
    assert r.returncode == 3, r.stderr
    got = sorted(json.loads(l)["exit"] for l in r.stdout.splitlines())
    assert got == [3, 3]
    r = sh_pipeline(run, f'"$TN_EXEC" -l {user} -H @{hosts} --json run -- echo hi '
                         "| jq -r 'select(.stream == \"stdout\") | .host + \" \" + .line' | sort")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == sorted([f"{user}@127.0.0.1:{sshd.port} hi", f"127.0.0.1:{sshd.port} hi"])


def test_pipeline_reports_an_unreachable_host_as_255(pipeline):
    run, hosts, user, sshd = pipeline
    dead = harness.free_port()
    with open(hosts, "w") as f:
        f.write(f"{user}@127.0.0.1:{sshd.port}\n{user}@127.0.0.1:{dead}\n")
    r = sh_pipeline(run, f'"$TN_EXEC" -H @{hosts} --json run -- true '
                         "| jq -c 'select(.exit != null) | {host, exit, error}'")
    assert r.returncode == 255, r.stderr
    records = {json.loads(l)["host"]: json.loads(l) for l in r.stdout.splitlines()}
    assert records[f"{user}@127.0.0.1:{sshd.port}"]["exit"] == 0
    bad = records[f"{user}@127.0.0.1:{dead}"]
    assert bad["exit"] == 255 and "cannot connect" in bad["error"]


def test_example_fleet_failures_script(pipeline):
    # examples/tn-exec/fleet-failures.sh: the failing hosts from the JSON Lines, tn-exec's status kept.
    run, hosts, user, sshd = pipeline
    dead = harness.free_port()
    with open(hosts, "w") as f:
        f.write(f"{user}@127.0.0.1:{sshd.port}\n{user}@127.0.0.1:{dead}\n")
    script = os.path.join(harness.SOURCE_ROOT, "examples", "tn-exec", "fleet-failures.sh")
    r = sh_pipeline(run, f"{script} {hosts} sh -c 'exit 4'")
    assert r.returncode == 255, r.stderr
    # The order of hosts in the output is not part of the contract (random ports sort either way).
    assert sorted(r.stdout.splitlines()) == sorted([
        f"{user}@127.0.0.1:{dead} 255 cannot connect to {user}@127.0.0.1:{dead}: Connection refused",
        f"{user}@127.0.0.1:{sshd.port} 4 "])
