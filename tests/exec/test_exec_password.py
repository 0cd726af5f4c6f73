"""tn-exec password logins against the real sshd (password, and keyboard-interactive through PAM) and
Dropbear: --password-stdin, --password-file, --askpass and SSH_ASKPASS; one try for a wrong password;
one secret for many hosts; --persist hands the password to its master without argv or environment."""
import contextlib
import glob
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
from dropbear_server import Dropbear, available  # noqa: E402
from exec_fixtures import Env  # noqa: E402


def start(kind):
    if kind == "dropbear":
        if not available():
            pytest.skip("dropbear is not installed")
        return Dropbear(password_auth=True).start()
    return harness.Sshd(password_auth=True, kbdint=(kind == "kbdint")).start()


@pytest.fixture(params=["password", "kbdint", "dropbear"])
def env(request):
    if not harness.is_root():
        pytest.skip("needs root to create a throwaway user")
    server = start(request.param)
    client = harness.ClientHome()  # no key at all: only the password can log in
    try:
        client.trust(server)
        e = Env(server, client)
        e.kind = request.param
        e.password = server.user.password
        yield e
    finally:
        for pidfile in glob.glob(os.path.join(client.state_dir, "exec-*.sock.pid")):  # our --persist masters
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(open(pidfile).read()), signal.SIGTERM)
        client.close()
        server.close()


def write_file(env, name, text, mode):
    path = os.path.join(env.client.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def askpass_script(env, password, exit_code=0):
    """An askpass program that records each prompt it is shown, one a line."""
    log = os.path.join(env.client.dir, "askpass.log")
    script = write_file(env, "askpass.sh", f"""#!/bin/sh
printf '%s\\n' "$1" >> {log}
printf '%s\\n' '{password}'
exit {exit_code}
""", 0o700)
    return script, log


def prompts(log):
    with open(log) as f:
        return f.read().splitlines()


def failed_attempts(env):
    log = env.sshd.log()
    return log.count("Failed password") + log.count("Failed keyboard-interactive") + log.count("Bad password attempt")


def test_password_stdin_then_the_rest_of_stdin_reaches_the_command(env):
    r = env.run("run", *env.base, "--password-stdin", env.target, "--", "cat", input=env.password + "\nhello\nworld\n")
    assert (r.returncode, r.stdout) == (0, "hello\nworld\n"), r.stderr
    assert env.password not in r.stderr


def test_password_file_private_accepted_shared_refused(env):
    good = write_file(env, "pw", env.password + "\n", 0o600)
    r = env.run("run", *env.base, "--password-file", good, env.target, "--", "echo", "ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    for mode in (0o644, 0o640):
        bad = write_file(env, f"pw{mode:o}", env.password + "\n", mode)
        r = env.run("run", *env.base, "--password-file", bad, env.target, "--", "echo", "ok")
        assert r.returncode == 77 and "chmod 600" in r.stderr and r.stdout == "", r.stderr
    assert failed_attempts(env) == 0  # refused before any connection


def test_askpass_option_and_ssh_askpass_env(env):
    script, log = askpass_script(env, env.password)
    r = env.run("run", *env.base, "--askpass", script, env.target, "--", "echo", "ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    assert prompts(log) == [f"{env.sshd.user.name}@127.0.0.1's password: "]
    # SSH_ASKPASS as OpenSSH reads it: force uses it, never does not; unset needs a display.
    r = env.run("run", *env.base, env.target, "true", env={"SSH_ASKPASS": script, "SSH_ASKPASS_REQUIRE": "force"})
    assert r.returncode == 0, r.stderr
    for extra in ({"SSH_ASKPASS_REQUIRE": "never", "DISPLAY": ":0"}, {}):
        r = env.run("run", *env.base, env.target, "true", env={"SSH_ASKPASS": script, **extra})
        assert r.returncode == 255 and "password source" in r.stderr, r.stderr  # refused by key, as ssh: 255
    r = env.run("run", *env.base, env.target, "true", env={"SSH_ASKPASS": script, "DISPLAY": ":0"})
    assert r.returncode == 0, r.stderr
    assert len(prompts(log)) == 3


def test_askpass_reads_nothing_of_our_stdin(env):
    """The askpass program's stdin is /dev/null: what tn-exec's stdin holds is the command's."""
    log = os.path.join(env.client.dir, "askpass-stdin.log")
    script = write_file(env, "askpass-stdin.sh", f"""#!/bin/sh
if IFS= read -r line; then printf 'read %s\\n' "$line" >> {log}; else echo eof >> {log}; fi
printf '%s\\n' '{env.password}'
""", 0o700)
    r = env.run("run", *env.base, "--askpass", script, env.target, "cat", input="for the command\n")
    assert (r.returncode, r.stdout) == (0, "for the command\n"), r.stderr
    assert prompts(log) == ["eof"]


def test_askpass_program_that_cannot_run_is_77(env):
    missing = os.path.join(env.client.dir, "no-such-askpass")
    r = env.run("run", *env.base, "--askpass", missing, env.target, "true")
    assert r.returncode == 77, r.stderr
    assert "askpass" in r.stderr and missing in r.stderr, r.stderr


def test_askpass_that_fails_is_77(env):
    script, log = askpass_script(env, env.password, exit_code=1)
    r = env.run("run", *env.base, "--askpass", script, env.target, "true")
    assert r.returncode == 77 and "askpass" in r.stderr, r.stderr


def test_wrong_password_is_77_after_one_try(env):
    script, log = askpass_script(env, "not-" + env.password)
    r = env.run("run", *env.base, "--askpass", script, env.target, "true")
    assert r.returncode == 77 and "password refused" in r.stderr, r.stderr
    assert len(prompts(log)) == 1
    harness.wait_for(lambda: failed_attempts(env) >= 1, what="the server to log the failed attempt")
    assert failed_attempts(env) == 1, env.sshd.log()
    assert "not-" + env.password not in r.stderr + r.stdout


def test_one_secret_for_many_hosts(env):
    script, log = askpass_script(env, env.password)
    hosts = ",".join([env.target] * 3)
    r = env.run("run", *env.base, "--askpass", script, "-H", hosts, "--", "echo", "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("hi\n") == 3
    assert len(prompts(log)) == 1  # asked once, used for all three


def test_password_stdin_and_hosts_on_stdin_conflict(env):
    r = env.run("run", *env.base, "--password-stdin", "-H", "@-", "--", "true", input="x\n")
    assert r.returncode == 64 and "-H @-" in r.stderr


def test_persist_master_gets_the_password_outside_argv_and_environment(env):
    r = env.run("run", *env.base, "--persist", "60", "--password-stdin", env.target, "--", "echo", "one",
                input=env.password + "\n")
    assert (r.returncode, r.stdout) == (0, "one\n"), r.stderr
    # The next call needs no password: the master's session is logged in.
    r = env.run("run", *env.base, "--persist", "60", env.target, "--", "echo", "two")
    assert (r.returncode, r.stdout) == (0, "two\n"), r.stderr
    (pidfile,) = glob.glob(os.path.join(env.client.state_dir, "exec-*.sock.pid"))
    pid = int(open(pidfile).read())
    for what in ("cmdline", "environ"):
        with open(f"/proc/{pid}/{what}", "rb") as f:
            assert env.password.encode() not in f.read()


def test_wrong_password_through_persist_is_77(env):
    r = env.run("run", *env.base, "--persist", "60", "--password-stdin", env.target, "true", input="wrong\n")
    assert r.returncode == 77 and "password refused" in r.stderr, r.stderr


def test_put_from_stdin_after_the_password_line(env):
    data = os.urandom(300000)
    r = env.run("put", *env.base, "--password-stdin", "-", f"{env.target}:blob",
                input=env.password.encode() + b"\n" + data, text=False)
    assert r.returncode == 0, r.stderr
    with open(env.remote("blob"), "rb") as f:
        assert f.read() == data
