"""tn-exec run against a real sshd: streams, quoting, exit codes, signals, timeout, stdin, env, cwd."""
import hashlib
import os
import signal
import subprocess
import time
import sys

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env, interrupt  # noqa: E402,F401


def test_quoting_keeps_words_verbatim(env):
    r = env.run("run", *env.base, env.target, "--", "printf", "%s\\n", "a b", "$HOME", "it's")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a b\n$HOME\nit's\n"


def test_words_without_double_dash(env):
    r = env.run("run", *env.base, env.target, "ls", "-la", "/")
    assert r.returncode == 0, r.stderr
    assert " .." in r.stdout or "root" in r.stdout


def test_streams_are_separate_and_ordered(env):
    script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done"
    r = env.run("run", *env.base, env.target, "--shell", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(f"out{i}\n" for i in range(1, 6))
    assert r.stderr == "".join(f"err{i}\n" for i in range(1, 6))


def test_output_streams_before_exit(env):
    # The first line must reach us while the remote still runs: read it, then let the command end.
    p = subprocess.Popen([env.exe, "run", *env.base, env.target, "--shell", "echo first; read x; echo second"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.client.env())
    try:
        assert p.stdout.readline() == b"first\n"
        p.stdin.write(b"go\n")
        p.stdin.close()
        assert p.stdout.read() == b"second\n"
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_exit_status_passed_through(env):
    assert env.run("run", *env.base, env.target, "true").returncode == 0
    assert env.run("run", *env.base, env.target, "--shell", "exit 3").returncode == 3


def test_signal_is_128_plus_n(env):
    r = env.run("run", *env.base, env.target, "--shell", "kill -TERM $$")
    assert r.returncode == 128 + 15, r.stderr
    r = env.run("run", *env.base, env.target, "--shell", "kill -KILL $$")
    assert r.returncode == 128 + 9, r.stderr


def test_timeout_is_124_and_kills_remote(env):
    marker = env.remote("still-running")
    start = time.monotonic()
    r = env.run("run", *env.base, "-t", "1", env.target, "--shell", f"sleep 3; touch {marker}")
    assert r.returncode == 124, r.stderr
    assert "timed out" in r.stderr
    # The remote shell got TERM (and its channel was closed): it never reaches the touch.
    time.sleep(max(0.0, start + 5 - time.monotonic()))
    assert not os.path.exists(marker)


def test_own_failures_are_255(env):
    # connection refused
    r = env.run("run", "-p", str(env.sshd.port), "--connect-timeout", "5", f"{env.sshd.user.name}@127.0.0.2", "true")
    assert r.returncode == 255
    assert "127.0.0.2" in r.stderr
    # unknown host key
    os.unlink(env.client.known_hosts)
    r = env.run("run", *env.base, env.target, "true")
    assert r.returncode == 255
    assert "not known" in r.stderr and "--accept-new" in r.stderr
    # --accept-new pins it, then it is known
    r = env.run("run", *env.base, "--accept-new", env.target, "true")
    assert r.returncode == 0, r.stderr
    assert "SHA256:" in r.stderr or os.path.getsize(env.client.known_hosts) > 0
    assert env.run("run", *env.base, env.target, "true").returncode == 0
    # auth refused (no key)
    r = env.run("run", *env.base, "-i", "/nonexistent", f"nobody{env.sshd.user.name}@127.0.0.1", "true")
    assert r.returncode == 255
    assert "authentication refused" in r.stderr


def test_usage_error_is_64(env):
    assert env.run("run").returncode == 64
    assert env.run("run", *env.base, env.target).returncode == 64
    assert env.run("run", *env.base, "--env", "1BAD=x", env.target, "true").returncode == 64


def test_stdin_forwarding_10mib(env):
    data = os.urandom(10 * 1024 * 1024)
    r = env.run("run", *env.base, env.target, "sha256sum", input=data, text=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_no_stdin_flag(env):
    r = env.run("run", *env.base, "-n", env.target, "wc", "-c", input="not sent\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def test_env_and_cwd(env):
    os.makedirs(env.remote("work dir"))
    env.chown_remote(env.remote("work dir"))
    r = env.run("run", *env.base, "--env", "TN_A=x y", "--env", "TN_B=it's", "--cwd", "work dir", env.target,
                "--shell", 'printf "%s|%s|%s\\n" "$TN_A" "$TN_B" "$(basename "$PWD")"')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "x y|it's|work dir\n"
    r = env.run("run", *env.base, "--cwd", "/nonexistent", env.target, "true")
    assert r.returncode == 1



def test_ctrl_c_is_passed_to_the_remote_command(env):
    code, out, _ = interrupt(env, [], 'trap "echo got INT; exit 7" INT; echo ready; while :; do sleep 0.1; done',
                             signal.SIGINT)
    assert (code, out) == (7, b"got INT\n")
    # A command that ignores it gets 2 s, then tn-exec stops waiting: 128 + SIGINT.
    code, _, _ = interrupt(env, [], 'trap "" INT; echo ready; sleep 20', signal.SIGINT)
    assert code == 130


def test_closed_stdout_stops_the_remote_command(env):
    # `tn-exec run h yes | head -1` must end, not stream into a closed pipe forever.
    p = subprocess.Popen([env.exe, "run", *env.base, "-n", env.target, "yes"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env.client.env())
    try:
        assert p.stdout.readline() == b"y\n"
        p.stdout.close()
        assert p.wait(timeout=30) == 255
        assert b"cannot write output" in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
