"""Docs stay honest: every built tool has a man page that renders, a bash completion that completes its
subcommands and long options, and an example that some test runs."""
import os
import re
import subprocess

import pytest

import harness

ROOT = harness.SOURCE_ROOT
TOOLS = sorted(os.environ[k] for k in os.environ if k.startswith("TN_") and k not in
               ("TN_SOURCE_ROOT", "TN_BUILD_ROOT", "TN_STATE_DIR") and os.path.isfile(os.environ[k]))
NAMES = [os.path.basename(t) for t in TOOLS]


def help_text(binary, *sub):
    r = subprocess.run([binary, *sub, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, f"{binary} {' '.join(sub)} --help exited {r.returncode}"
    return r.stdout


def long_options(text):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)))


def subcommands(text):
    """Subcommand names from CLI11's help ('Subcommands:' section, two-space indented names)."""
    m = re.search(r"^Subcommands:\n((?:  .*\n?)+)", text, re.M)
    if not m:
        return []
    return [line.split()[0] for line in m.group(1).splitlines() if re.match(r"^  \S", line)]


def complete(name, words):
    """Runs the tool's completion function for COMP_WORDS=words (the last word is being completed)."""
    script = f"""
source {ROOT}/completions/{name}
fn=$(complete -p {name} | sed -E 's/.*-F ([^ ]+).*/\\1/')
COMP_WORDS=({' '.join(_q(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$fn" {name} {_q(words[-1])} {_q(words[-2])}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=10,
                       env={"HOME": "/nonexistent", "PATH": os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    return set(r.stdout.split())


def _q(w):
    return "'" + w.replace("'", "'\\''") + "'"


def test_tools_were_found():
    assert "tn-keysetup" in NAMES


@pytest.mark.parametrize("binary", TOOLS, ids=NAMES)
def test_man_page_renders(binary):
    name = os.path.basename(binary)
    page = os.path.join(ROOT, "man", name + ".1")
    assert os.path.isfile(page), f"missing man/{name}.1"
    r = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = subprocess.run(["man", "-l", page], capture_output=True, text=True, env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat"})
    assert r.returncode == 0, r.stderr
    assert name in r.stdout and "EXIT STATUS" in r.stdout
    # Every long option the tool accepts is documented.
    text = help_text(binary)
    opts = set(long_options(text))
    for sub in subcommands(text):
        opts |= set(long_options(help_text(binary, sub)))
    missing = sorted(o for o in opts if o not in ("--help",) and o not in r.stdout.replace("\u2010", "-"))
    assert not missing, f"man/{name}.1 does not mention {missing}"


@pytest.mark.parametrize("binary", TOOLS, ids=NAMES)
def test_completion_covers_options_and_subcommands(binary):
    name = os.path.basename(binary)
    assert os.path.isfile(os.path.join(ROOT, "completions", name)), f"missing completions/{name}"
    text = help_text(binary)
    subs = subcommands(text)
    if subs:
        got = complete(name, [name, ""])
        assert set(subs) <= got, f"subcommands not completed: {sorted(set(subs) - got)}"
        for sub in subs:
            want = set(long_options(help_text(binary, sub)))
            got = complete(name, [name, sub, "--"])
            assert want <= got, f"{name} {sub}: not completed: {sorted(want - got)}"
    want = set(long_options(text))
    got = complete(name, [name, "--"])
    assert want <= got, f"{name}: not completed: {sorted(want - got)}"


@pytest.mark.parametrize("binary", TOOLS, ids=NAMES)
def test_example_exists_and_a_test_uses_it(binary):
    name = os.path.basename(binary)
    d = os.path.join(ROOT, "examples", name)
    assert os.path.isdir(d) and os.listdir(d), f"missing examples/{name}/"
    users = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "tests")):
        for f in files:
            if f.endswith((".py", ".sh", ".cpp")):
                with open(os.path.join(dirpath, f), encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                if f"examples/{name}" in text or f'"examples", "{name}"' in text:
                    users.append(f)
    assert users, f"no test runs or parses anything in examples/{name}/"
