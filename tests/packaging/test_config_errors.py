"""Config errors print as compilers do: one line per problem, FILE:LINE:COL: error: MESSAGE, at the
start of the line (not inside a log line, not joined with a literal \\n), and a TOML syntax error reads
in plain words instead of toml++'s parser internals."""
import os
import re
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

# tool, argv before -c, a table the tool knows (so only the planted keys are wrong)
TOOLS = [("tn-route", [], "route"), ("tn-vnet", [], "route"), ("tn-forward", [], "server"),
         ("tn-tun", ["server"], "server")]


def check(tool, pre, text):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        r = subprocess.run([harness.tool(tool), *pre, "-c", f.name, "--check-config"], capture_output=True,
                           text=True, timeout=30)
    finally:
        os.unlink(f.name)
    assert r.returncode == 78, r.stderr
    return f.name, r.stderr.splitlines()


@pytest.mark.parametrize("tool,pre,table", TOOLS, ids=[t[0] for t in TOOLS])
def test_one_line_per_problem(tool, pre, table):
    path, lines = check(tool, pre, f"[{table}]\nbogus_one = 1\nbogus_two = 2\n")
    # Every line is a located problem (the planted keys, and whatever the tool requires besides).
    assert lines and all(re.match(rf"^{re.escape(path)}:\d+:\d+: error: ", ln) for ln in lines), lines
    assert {2, 3} <= {int(ln.split(":")[1]) for ln in lines}, lines
    assert not any("\\n" in ln for ln in lines), lines


def test_syntax_errors_read_in_plain_words():
    path, lines = check("tn-route", [], "[route]\nlisten =\n")
    assert lines == [f"{path}:2:9: error: in key-value pair: expected a value, found the end of the line"], lines
