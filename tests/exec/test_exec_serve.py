"""tn-exec serve --stdio against the real sshd: the example client's paramiko-style workflow, streamed
events and one result per request, errors as objects, and a 10 MB request line answered and skipped."""
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from exec_fixtures import env  # noqa: E402,F401

ROOT = os.environ.get("TN_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


def test_example_client_runs_the_workflow(env):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "tn-exec", "serve_client.py"), env.target,
                        *env.base], capture_output=True, text=True, timeout=120,
                       env=env.client.env(TN_EXEC=env.exe), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "result: 1000" in r.stdout and "files: input.txt result.txt" in r.stdout, r.stdout
    with open(env.remote("tn-serve-demo", "input.txt"), "rb") as f:
        assert f.read() == b"input data\n" * 1000


def serve(env, lines):
    r = subprocess.run([env.exe, "serve", "--stdio", *env.base], input="".join(lines), capture_output=True, text=True,
                       timeout=120, env=env.client.env())
    return r.returncode, [json.loads(x) for x in r.stdout.splitlines()], r.stderr


def req(**kw):
    return json.dumps(kw) + "\n"


def test_events_results_and_errors(env):
    big = "x" * (10 * 1024 * 1024)
    code, out, err = serve(env, [
        req(id="1", op="run", host=env.target, command="echo out; echo err >&2; exit 3"),
        "not json\n",
        '{"id":"big","op":"put","data":"' + big + '"}\n',
        req(id="2", op="get", host=env.target, path="missing"),
        req(id="3", op="stat", host=env.target, path="missing"),
        req(id="4", op="put", host=env.target, path="f", data=base64.b64encode(b"\x00\xffbin").decode()),
        req(id="5", op="get", host=env.target, path="f"),
        req(id="6", op="nope", host=env.target),
    ])
    assert code == 0, err
    results = {m["id"]: m for m in out if "event" not in m and m["id"] is not None}
    events = [(m["event"], base64.b64decode(m["data"])) for m in out if m.get("event")]
    assert sorted(events) == [("stderr", b"err\n"), ("stdout", b"out\n")]
    assert results["1"]["exit"] == 3
    nulls = [m for m in out if m["id"] is None]
    assert [m["exit"] for m in nulls] == [65, 65] and "longer than" in nulls[1]["error"]  # not JSON; too long
    assert results["2"]["exit"] == 1 and "no such file" in results["2"]["error"]
    assert results["3"]["exit"] == 1
    assert results["4"]["exit"] == 0 and base64.b64decode(results["5"]["data"]) == b"\x00\xffbin"
    assert results["6"]["exit"] == 64 and "unknown op" in results["6"]["error"]


def test_megabyte_put_and_get_through_grown_pipes(env):
    """A 1 MiB put and get are 1.4 MB lines: serve grows its stdio pipes to 1 MiB so each crosses in a
    couple of wake-ups; the bytes come back whole, also through a symlink (the get follows it)."""
    import fcntl
    data = os.urandom(1 << 20)
    p = subprocess.Popen([env.exe, "serve", "--stdio", *env.base], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=env.client.env())
    try:
        def call(**kw):
            p.stdin.write((json.dumps(kw) + "\n").encode())
            p.stdin.flush()
            return json.loads(p.stdout.readline())
        put = call(id="1", op="put", host=env.target, path="mb.bin", data=base64.b64encode(data).decode())
        assert (put["exit"], put["bytes"]) == (0, len(data)), put
        os.symlink("mb.bin", env.remote("mb.link"))
        for path in ("mb.bin", "mb.link"):
            got = call(id="2", op="get", host=env.target, path=path)
            assert got["exit"] == 0 and base64.b64decode(got["data"]) == data, got.get("error")
        for f in (p.stdin, p.stdout):  # our ends of its pipes: one pipe each, so the size is shared
            assert fcntl.fcntl(f, fcntl.F_GETPIPE_SZ) == 1 << 20
    finally:
        p.stdin.close()
        assert p.wait(timeout=60) == 0


def serve_bytes(env, data):
    r = subprocess.run([env.exe, "serve", "--stdio", *env.base], input=data, capture_output=True, timeout=120,
                       env=env.client.env())
    return r.returncode, r.stdout, r.stderr


def test_raw_put_and_get_carry_bytes_after_their_lines(env):
    """"data_bytes": the put's bytes follow its line as they are (no base64); a get with "raw" answers
    with "data_bytes" and the bytes after its result line. Bytes that look like requests stay data, and
    a request that fails still has its announced bytes taken off the stream."""
    data = os.urandom(1 << 20) + b'\n{"id":"x","op":"rm","host":"h","path":"mb.bin"}\n'
    code, out, err = serve_bytes(env, b"".join([
        req(id="1", op="put", host=env.target, path="mb.bin", data_bytes=len(data)).encode(), data,
        req(id="2", op="get", host=env.target, path="mb.bin", raw=True).encode(),
        req(id="3", op="get", host=env.target, path="nope", raw=True).encode(),
        req(id="4", op="stat", host=env.target, path="mb.bin", data_bytes=5).encode(), b"12345",
        req(id="5", op="put", host=env.target, path="mb.bin", data="YQ==", data_bytes=1).encode(), b"\n",
        req(id="6", op="get", host=env.target, path="mb.bin").encode(),
    ]))
    assert code == 0, err
    first, rest = out.split(b"\n", 1)
    assert json.loads(first) == {"id": "1", "exit": 0, "bytes": len(data)}
    with open(env.remote("mb.bin"), "rb") as f:
        assert f.read() == data
    head, rest = rest.split(b"\n", 1)
    assert json.loads(head) == {"id": "2", "exit": 0, "data_bytes": len(data)}
    assert rest[:len(data)] == data
    results = [json.loads(x) for x in rest[len(data):].splitlines()]
    assert [(m["id"], m["exit"]) for m in results] == [("3", 1), ("4", 64), ("5", 64), ("6", 0)], results
    assert "data_bytes" in results[1]["error"] and base64.b64decode(results[3]["data"]) == data


def test_input_ending_inside_raw_data_writes_nothing(env):
    code, out, err = serve_bytes(env, req(id="1", op="put", host=env.target, path="cut.bin", data_bytes=100).encode()
                                 + b"only 20 bytes here..")
    assert code == 0, err
    res = json.loads(out)
    assert (res["id"], res["exit"]) == ("1", 65) and "80 bytes short" in res["error"], res
    assert not [n for n in os.listdir(env.remote("")) if "cut.bin" in n]
