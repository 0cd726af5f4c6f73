"""completions/tn-exec: host names come from ~/.ssh/config Host lines (wildcards left out), and remote
arguments of put/get complete as host:."""
import os
import subprocess
import tempfile

ROOT = os.environ.get("TN_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


def complete(home, words):
    script = f"""
source {ROOT}/completions/tn-exec
COMP_WORDS=({' '.join("'" + w + "'" for w in words)})
COMP_CWORD={len(words) - 1}
_tn_exec
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=10,
                       env={"HOME": home, "PATH": os.environ["PATH"]}, cwd=home)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return set(r.stdout.split())


def test_hosts_from_ssh_config():
    with tempfile.TemporaryDirectory() as home:
        os.makedirs(os.path.join(home, ".ssh"))
        with open(os.path.join(home, ".ssh", "config"), "w") as f:
            f.write("Host web1 web2 *.corp !bad\n  HostName 10.0.0.1\n\nhost db-main\n  User x\n")
        assert complete(home, ["tn-exec", "run", "w"]) == {"web1", "web2"}
        assert complete(home, ["tn-exec", "run", "-H", ""]) == {"web1", "web2", "db-main"}
        assert "db-main:" in complete(home, ["tn-exec", "get", "db"])
        assert complete(home, ["tn-exec", ""]) == {"run", "put", "get", "persist", "ls", "stat", "mkdir", "rm", "mv", "chmod", "ln", "df", "serve"}
        assert complete(home, ["tn-exec", "persist", ""]) == {"list", "stop"}
        assert "--json" in complete(home, ["tn-exec", "-v", "persist", "list", "--j"])
        assert "--all" in complete(home, ["tn-exec", "persist", "stop", "--a"])
        assert "--json" in complete(home, ["tn-exec", "--j"])
        assert "--preserve" in complete(home, ["tn-exec", "get", "--pre"])
        assert "--persist" in complete(home, ["tn-exec", "run", "--p"])
        assert "--resume" in complete(home, ["tn-exec", "put", "--r"])


def test_no_ssh_config_is_quiet():
    with tempfile.TemporaryDirectory() as home:
        assert complete(home, ["tn-exec", "run", ""]) == set()
