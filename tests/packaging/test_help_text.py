"""--help of every tool and subcommand reads as written: no CLI11 internals such as a negated flag's
default ("--no-progress{false}")."""
import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

TOOLS = ["tn-keysetup", "tn-exec", "tn-forward", "tn-watch", "tn-tun", "tn-route", "tn-vnet"]


def help_text(*argv):
    r = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{argv} --help exited {r.returncode}: {r.stderr}"
    return r.stdout


def subcommands(text):
    m = re.search(r"^Subcommands:\n((?:  .*\n?)+)", text, re.M)
    return [line.split()[0] for line in m.group(1).splitlines() if re.match(r"^  \S", line)] if m else []


@pytest.mark.parametrize("tool", TOOLS)
def test_help_shows_no_flag_defaults(tool):
    binary = harness.tool(tool)
    texts = {tool: help_text(binary)}
    for sub in subcommands(texts[tool]):
        texts[f"{tool} {sub}"] = help_text(binary, sub)
    bad = [f"{where}: {line.strip()}" for where, text in texts.items() for line in text.splitlines()
           if re.search(r"--[\w-]+\{(true|false)\}", line)]
    assert not bad, "\n".join(bad)
