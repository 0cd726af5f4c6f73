"""tn-exec ls/stat/mkdir/rm/mv/chmod/ln/df over SFTP against the real sshd: text and --json output,
names with newlines, and the exit codes (missing 1, permission 77, other refusals 74, own failures 255)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env  # noqa: E402,F401


def fs(env, *args, **kw):
    return env.run(*args, "--port", str(env.sshd.port), **kw)  # mkdir -p is --parents, as in mkdir(1)


def make_tree(env):
    root = env.remote("t")
    os.makedirs(os.path.join(root, "sub"))
    with open(os.path.join(root, "a.txt"), "w") as f:
        f.write("hello")
    with open(os.path.join(root, "sub", "b\nc"), "w") as f:
        f.write("x")
    os.symlink("a.txt", os.path.join(root, "link"))
    env.chown_remote(root)
    return root


def test_ls_text_long_recursive_and_json(env):
    make_tree(env)
    r = fs(env, "ls", f"{env.target}:t")
    assert (r.returncode, r.stdout) == (0, "a.txt\nlink\nsub\n"), r.stderr
    r = fs(env, "ls", "-r", f"{env.target}:t")
    assert r.stdout == "t/a.txt\nt/link\nt/sub\nt/sub/b\\nc\n"  # the newline escaped: one name, one line
    r = fs(env, "ls", "-l", f"{env.target}:t")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("-rw") and lines[0].split()[3] == "5" and lines[0].endswith(" a.txt")
    assert lines[1].startswith("l") and lines[1].endswith("link -> a.txt")
    assert lines[2].startswith("d")
    r = fs(env, "ls", "-r", "--json", f"{env.target}:t")
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["path"] for x in recs] == ["t/a.txt", "t/link", "t/sub", "t/sub/b\nc"]  # exact in JSON
    assert recs[0]["type"] == "file" and recs[0]["size"] == 5 and recs[1]["target"] == "a.txt"
    assert recs[2]["type"] == "dir" and recs[0]["uid"] == env.sshd.user.uid


def test_stat_and_missing_paths(env):
    make_tree(env)
    r = fs(env, "stat", "--json", f"{env.target}:t/a.txt")
    rec = json.loads(r.stdout)
    assert rec["size"] == 5 and rec["mode"] == "0644" and rec["type"] == "file"
    r = fs(env, "stat", "--json", f"{env.target}:t/link")
    assert json.loads(r.stdout)["type"] == "link"
    for op in (["stat"], ["ls"], ["rm"], ["chmod", "600"]):
        r = fs(env, *op, f"{env.target}:t/nope")
        assert r.returncode == 1 and "no such file" in r.stderr and "t/nope" in r.stderr, (op, r.stderr)


def test_mkdir_rm_mv_chmod_ln(env):
    make_tree(env)
    r = fs(env, "mkdir", "-p", f"{env.target}:t/x/y/z")
    assert r.returncode == 0 and os.path.isdir(env.remote("t/x/y/z")), r.stderr
    assert fs(env, "mkdir", "-p", f"{env.target}:t/x/y").returncode == 0  # exists: fine
    r = fs(env, "mkdir", f"{env.target}:t/x")
    assert r.returncode == 74, r.stderr  # exists, without -p
    r = fs(env, "mkdir", "-p", f"{env.target}:t/a.txt/q")
    assert r.returncode == 74 and "in the way" in r.stderr
    r = fs(env, "mv", f"{env.target}:t/a.txt", "t/x/moved")
    assert r.returncode == 0 and open(env.remote("t/x/moved")).read() == "hello", r.stderr
    r = fs(env, "chmod", "600", f"{env.target}:t/x/moved")
    assert r.returncode == 0 and os.stat(env.remote("t/x/moved")).st_mode & 0o777 == 0o600
    assert fs(env, "chmod", "9z", f"{env.target}:t/x/moved").returncode == 64
    r = fs(env, "ln", "-s", "x/moved", f"{env.target}:t/l2")
    assert r.returncode == 0 and os.readlink(env.remote("t/l2")) == "x/moved", r.stderr
    assert fs(env, "ln", "x", f"{env.target}:t/l3").returncode == 64
    r = fs(env, "rm", f"{env.target}:t/x")
    assert r.returncode == 74 and "-r" in r.stderr
    r = fs(env, "rm", "-r", "--json", f"{env.target}:t")
    assert r.returncode == 0 and not os.path.exists(env.remote("t")), r.stderr
    assert json.loads(r.stdout) == {"host": env.target, "op": "rm", "path": "t", "exit": 0}


def test_permission_is_77(env):
    locked = env.remote("locked")
    os.makedirs(os.path.join(locked, "in"))
    env.chown_remote(locked)
    os.chmod(locked, 0o500)
    r = fs(env, "rm", "-r", f"{env.target}:locked/in")
    assert r.returncode == 77 and "permission denied" in r.stderr, r.stderr
    r = fs(env, "mkdir", f"{env.target}:locked/new")
    assert r.returncode == 77


def test_newline_in_a_path_argument(env):
    r = fs(env, "mkdir", f"{env.target}:a\nb")
    assert r.returncode == 0 and os.path.isdir(env.remote("a\nb")), r.stderr
    r = fs(env, "ls", "-l", f"{env.target}:.")
    assert "a\\nb" in r.stdout and "a\nb" not in r.stdout


def test_df(env):
    r = fs(env, "df", "--json", env.target)
    rec = json.loads(r.stdout)
    st = os.statvfs(env.remote())
    assert rec["size"] == st.f_blocks * st.f_frsize and 0 <= rec["avail"] <= rec["size"]
    r = fs(env, "df", f"{env.target}:.")
    assert r.returncode == 0 and r.stdout.split()[:3] == ["size", "used", "avail"]


def test_own_failures_are_255(env):
    r = env.run("ls", "-p", "1", f"{env.target}:.")
    assert r.returncode == 255
    r = fs(env, "ls", "-H", env.target, "x")  # -H works too: x is missing there, 1 as with one host
    assert r.returncode == 1 and f"{env.target}: cannot stat" in r.stderr, r.stderr


def test_file_operations_through_a_persist_master(env):
    """--persist on the file operations: the first starts a master, the next ones reuse its session
    (one login in sshd's log for all of them); errors keep their codes; the master stays up after one."""
    logins = env.sshd.log().count("Accepted publickey")
    p = ["--persist", "5"]
    assert fs(env, "mkdir", *p, "-p", f"{env.target}:pm/a").returncode == 0
    r = fs(env, "ls", *p, "-l", f"{env.target}:pm")
    assert r.returncode == 0 and r.stdout.rstrip().endswith(" a"), r.stderr
    r = fs(env, "stat", *p, "--json", f"{env.target}:pm/a")
    assert r.returncode == 0 and json.loads(r.stdout)["type"] == "dir", r.stderr
    r = fs(env, "ls", *p, f"{env.target}:pm/missing")
    assert r.returncode == 1 and "no such file" in r.stderr, r.stderr
    assert fs(env, "rm", *p, "-r", f"{env.target}:pm").returncode == 0
    assert not os.path.exists(env.remote("pm"))
    assert env.sshd.log().count("Accepted publickey") == logins + 1
    r = fs(env, "ls", "-H", env.target, *p, "x")
    assert r.returncode == 64 and "not -H" in r.stderr
