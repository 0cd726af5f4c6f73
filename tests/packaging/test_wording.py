"""User-facing text speaks of tn's own features, never of the seed documents tn was designed from:
man pages, README, examples, completions, Lua policies, unit files and every string literal in
tools/ and lib/ (error messages, help, logs) must not say "seed 0..." (any case, with a space, a dash
or nothing between)."""
import os
import re

import pytest

ROOT = os.environ.get("TN_SOURCE_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")
SEED = re.compile(r"seed[\s_-]*0\d", re.I)
# A C++ string literal (ordinary or raw-free), good enough for our sources: no multi-line literals.
LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def files_under(*parts, exts=None):
    base = os.path.join(ROOT, *parts)
    if os.path.isfile(base):
        yield base
        return
    for d, _, names in os.walk(base):
        for n in sorted(names):
            if exts is None or n.endswith(exts):
                yield os.path.join(d, n)


def rel(path):
    return os.path.relpath(path, ROOT)


def prose_files():
    yield os.path.join(ROOT, "README.md")
    for part in ("man", "examples", "completions", "lua", "systemd", "debian"):
        yield from files_under(part)


def hits_in_prose(path):
    with open(path, errors="replace") as f:
        for no, line in enumerate(f, 1):
            if SEED.search(line):
                yield f"{rel(path)}:{no}: {line.strip()}"


def hits_in_literals(path):
    with open(path, errors="replace") as f:
        for no, line in enumerate(f, 1):
            if line.lstrip().startswith(("//", "*", "/*")):
                continue  # a comment: for developers, not users
            for lit in LITERAL.findall(line):
                if SEED.search(lit):
                    yield f"{rel(path)}:{no}: {lit}"


def test_the_pattern_finds_what_it_must():
    # The check itself can fail: each spelling is caught, and tn's own words pass.
    for bad in ("Seed 004: vnet", "seed-003's VPN", "see SEED 000", "seed001 workflow"):
        assert SEED.search(bad), bad
    for good in ("seeded random", "a seed of 0", "speed 0.5"):
        assert not SEED.search(good), good
    assert list(LITERAL.findall('t.error("type", "only tcp (seed 004)");'))[1] == '"only tcp (seed 004)"'


@pytest.mark.parametrize("kind", ["prose", "literals"])
def test_no_seed_numbers_in_user_facing_text(kind):
    if kind == "prose":
        hits = [h for p in prose_files() if os.path.isfile(p) for h in hits_in_prose(p)]
    else:
        hits = [h for part in ("tools", "lib") for p in files_under(part, exts=(".cpp", ".hpp"))
                for h in hits_in_literals(p)]
    assert not hits, "user-facing text names a seed document:\n" + "\n".join(hits)


def man_pages():
    d = os.path.join(ROOT, "man")
    return sorted(n for n in os.listdir(d) if re.match(r".+\.[1-8]$", n))


@pytest.mark.parametrize("page", man_pages())
def test_man_pages_share_one_header_and_have_examples(page):
    name, section = page.rsplit(".", 1)
    with open(os.path.join(ROOT, "man", page)) as f:
        text = f.read()
    first = text.splitlines()[0]
    # One title and one date format for all: .TH NAME SECTION YYYY-MM-DD "tn X.Y.Z" "tn manual"
    assert re.fullmatch(rf'\.TH {re.escape(name.upper())} {section} \d{{4}}-\d\d-\d\d "tn \d+\.\d+\.\d+" "tn manual"',
                        first), first
    assert "\n.SH EXAMPLES\n" in text, f"man/{page} has no EXAMPLES section"


def test_every_listed_man_page_exists():
    with open(os.path.join(ROOT, "man", "meson.build")) as f:
        listed = re.findall(r"'([^']+\.[1-8])'", f.read())
    assert listed and sorted(listed) == man_pages()
