"""tn-exec run --sudo against the real sshd and the real sudo: a throwaway password rule for the
fixture's throwaway user in a temp /etc/sudoers.d file (removed after). The password answers sudo's
prompt from the same sources as the login password and never shows in any output; a wrong one is 77
after one try; without a password source a rule that wants one is 77 with a hint."""
import base64
import contextlib
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
from exec_fixtures import Env  # noqa: E402


@contextlib.contextmanager
def sudo_rule(user, rule):
    """Writes `rule` for `user` in /etc/sudoers.d (checked by visudo first) and removes it after."""
    if shutil.which("sudo") is None or shutil.which("visudo") is None:
        pytest.skip("sudo is not installed (scripts/install-deps.sh installs it)")
    path = f"/etc/sudoers.d/tn-test-{user}"
    text = (f"Defaults:{user} timestamp_timeout=0, !lecture\n"  # no cached credentials between tests
            f"{user} ALL=(ALL) {rule}\n")
    tmp = path + ".new"  # sudo skips names with a dot: never read half written
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o440)
    try:
        subprocess.run(["visudo", "-c", "-q", "-f", tmp], check=True)
        os.rename(tmp, path)
        yield
    finally:
        for p in (tmp, path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)


@pytest.fixture
def env():
    if not harness.is_root():
        pytest.skip("needs root to create a throwaway user and a sudoers rule")
    sshd = harness.Sshd(password_auth=True).start()
    client = harness.ClientHome()
    try:
        client.trust(sshd)
        sshd.user.authorize(client.key())  # logins by key: the password is for sudo
        e = Env(sshd, client)
        e.password = sshd.user.password
        yield e
    finally:
        client.close()
        sshd.close()


def password_file(env, text):
    path = os.path.join(env.client.dir, "pw")
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def assert_no_secret(env, r):
    for stream in (r.stdout, r.stderr):
        assert env.password not in stream
        assert "tn-exec-sudo" not in stream  # our markers never show


def test_password_rule_runs_as_root_and_stdin_reaches_the_command(env):
    with sudo_rule(env.sshd.user.name, "ALL"):
        r = env.run("run", *env.base, "--password-stdin", "--sudo", env.target, "--", "sh", "-c", "id -u; cat",
                    input=env.password + "\nafter the password\n")
    assert (r.returncode, r.stdout) == (0, "0\nafter the password\n"), r.stderr
    assert_no_secret(env, r)


def test_sudo_as_another_user_with_env_and_cwd_inside(env):
    with sudo_rule(env.sshd.user.name, "ALL"):
        r = env.run("run", *env.base, "--password-file", password_file(env, env.password), "--sudo=nobody",
                    "--env", "GREETING=hi there", "--cwd", "/tmp", "-n", env.target, "--",
                    "sh", "-c", 'echo "$(id -un) $GREETING $(pwd)"; echo err >&2')
    assert (r.returncode, r.stdout) == (0, "nobody hi there /tmp\n"), r.stderr
    assert r.stderr == "err\n"
    assert_no_secret(env, r)


def test_wrong_password_is_77_after_one_try(env):
    with sudo_rule(env.sshd.user.name, "ALL"):
        r = env.run("run", *env.base, "--password-file", password_file(env, "not-the-password"), "--sudo", env.target,
                    "--", "touch", "/ran-as-root")
    assert r.returncode == 77, r.stderr
    assert "sudo refused the password" in r.stderr
    assert r.stderr.count("Sorry, try again") <= 1  # one try, not sudo's three
    assert not os.path.exists("/ran-as-root")
    assert "not-the-password" not in r.stdout + r.stderr
    assert_no_secret(env, r)


def test_password_rule_without_a_password_source_is_77_with_a_hint(env):
    with sudo_rule(env.sshd.user.name, "ALL"):
        r = env.run("run", *env.base, "--sudo", env.target, "--", "id", "-u")
    assert r.returncode == 77, r.stderr
    assert "--password-stdin" in r.stderr and r.stdout == ""


def test_nopasswd_rule_needs_no_password_and_stdin_flows(env):
    with sudo_rule(env.sshd.user.name, "NOPASSWD: ALL"):
        r = env.run("run", *env.base, "--sudo", env.target, "--", "sh", "-c", "id -u; cat", input="data\n")
    assert (r.returncode, r.stdout) == (0, "0\ndata\n"), r.stderr


def test_not_in_sudoers_is_77_and_exit_status_passes_through(env):
    r = env.run("run", *env.base, "--password-file", password_file(env, env.password), "--sudo", env.target,
                "--", "id", "-u")
    assert r.returncode == 77, r.stderr
    assert_no_secret(env, r)
    with sudo_rule(env.sshd.user.name, "NOPASSWD: ALL"):
        r = env.run("run", *env.base, "--sudo", "-n", env.target, "--", "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr


def test_sudo_refuses_tty(env):
    r = env.run("run", *env.base, "--sudo", "--tty", env.target, "--", "id")
    assert r.returncode == 64 and "--tty" in r.stderr


def test_sudo_through_a_persist_master_asks_this_call_for_the_password(env):
    """The master answers sudo's prompt with the password of the call that asked (its own
    --password-file each time), so a wrong one is 77 for that call only and the master goes on."""
    from test_exec_persist import masters
    try:
        with sudo_rule(env.sshd.user.name, "ALL"):
            good = password_file(env, env.password)
            r = env.run("run", *env.base, "--persist", "60", "--password-file", good, "--sudo", env.target, "--",
                        "sh", "-c", "id -u; cat", input="through the master\n")
            assert (r.returncode, r.stdout) == (0, "0\nthrough the master\n"), r.stderr
            assert_no_secret(env, r)
            [pid] = masters(env)

            bad = os.path.join(env.client.dir, "bad-pw")
            with open(bad, "w") as f:
                f.write("not-the-password\n")
            os.chmod(bad, 0o600)
            r = env.run("run", *env.base, "--persist", "60", "--password-file", bad, "--sudo", env.target, "--",
                        "touch", "/ran-as-root")
            assert r.returncode == 77 and "sudo refused the password" in r.stderr, r.stderr
            assert not os.path.exists("/ran-as-root")
            assert "not-the-password" not in r.stdout + r.stderr
            assert_no_secret(env, r)

            r = env.run("run", *env.base, "--persist", "60", "--sudo=nobody", "--password-file", good, env.target,
                        "--", "id", "-un")
            assert (r.returncode, r.stdout) == (0, "nobody\n"), r.stderr
            r = env.run("run", *env.base, "--persist", "60", "--sudo", env.target, "--", "id", "-u")
            assert r.returncode == 77 and "--password-stdin" in r.stderr, r.stderr
            assert masters(env) == [pid]  # one master served every call
    finally:
        env.run("persist", "stop", "--all")


def serve(env, password, *requests):
    import json
    pw = password_file(env, password)
    lines = "".join(json.dumps({"id": str(i), "host": env.target, **rq}) + "\n" for i, rq in enumerate(requests))
    r = subprocess.run([env.exe, "serve", "--stdio", *env.base, "--password-file", pw], input=lines, capture_output=True,
                       text=True, timeout=120, env=env.client.env())
    assert r.returncode == 0, r.stderr
    assert env.password not in r.stdout + r.stderr and "tn-exec-sudo" not in r.stdout + r.stderr
    msgs = [json.loads(x) for x in r.stdout.splitlines()]
    return ({m["id"]: m for m in msgs if "event" not in m},
            {m["id"]: "".join(base64.b64decode(e["data"]).decode() for e in msgs if e.get("event") == "stdout"
                              and e["id"] == m["id"]) for m in msgs if "event" not in m})


def test_serve_run_with_sudo(env):
    with sudo_rule(env.sshd.user.name, "ALL"):
        res, out = serve(env, env.password, {"op": "run", "command": "id -u", "sudo": True},
                         {"op": "run", "command": "id -un; pwd", "sudo_user": "nobody", "cwd": "/tmp"},
                         {"op": "run", "command": "id -u"})
        assert (res["0"]["exit"], out["0"]) == (0, "0\n"), res
        assert (res["1"]["exit"], out["1"]) == (0, "nobody\n/tmp\n"), res
        assert out["2"] == f"{env.sshd.user.uid}\n"
        res, out = serve(env, "not-the-password", {"op": "run", "command": "id -u", "sudo": True})
        assert res["0"]["exit"] == 77 and "refused the password" in res["0"]["error"], res
