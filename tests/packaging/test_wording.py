"""User-facing text speaks of tn's own features, never of the seed documents tn was designed from:
man pages, README, doc/, bench/, examples, completions, Lua policies, unit files and every line of the sources in
tools/ and lib/, string literals (error messages, help, logs) and comments alike (a comment is where
the next message is copied from), must not say "seed 0..." (any case, with a space, a dash or nothing
between)."""
import os
import re

import pytest

ROOT = os.environ.get("TN_SOURCE_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")
SEED = re.compile(r"seed[\s_-]*0\d", re.I)


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
    # doc/ and bench/ too: a benchmark's printed rows and its README are read by users as well.
    for part in ("man", "examples", "completions", "lua", "systemd", "debian", "doc", "bench"):
        yield from files_under(part)


def hits_in_prose(path):
    with open(path, errors="replace") as f:
        for no, line in enumerate(f, 1):
            if SEED.search(line):
                yield f"{rel(path)}:{no}: {line.strip()}"


def hits_in_source(path):
    """Every line: string literals and comments (//, /* */ and their continuation lines) alike."""
    with open(path, errors="replace") as f:
        for no, line in enumerate(f, 1):
            if SEED.search(line):
                yield f"{rel(path)}:{no}: {line.strip()}"


def source_files():
    for part in ("tools", "lib"):
        yield from files_under(part, exts=(".cpp", ".hpp", ".h", "meson.build"))


def test_the_pattern_finds_what_it_must():
    # The check itself can fail: each spelling is caught, and tn's own words pass.
    for bad in ("Seed 004: vnet", "seed-003's VPN", "see SEED 000", "seed001 workflow"):
        assert SEED.search(bad), bad
    for good in ("seeded random", "a seed of 0", "speed 0.5"):
        assert not SEED.search(good), good


def test_sources_are_checked_in_comments_as_well_as_literals(tmp_path):
    src = tmp_path / "x.cpp"
    src.write_text('// as vnet-v2 did (seed 004)\nint x;  /* Seed-003 */\n * seed001 in a block\n'
                   'auto s = "ok";\nauto t = "seed 002";\nauto seeded = 0;\n')
    assert [h.split(":")[1] for h in hits_in_source(str(src))] == ["1", "2", "3", "5"]
    assert any(p.endswith(os.path.join("base", "log.cpp")) for p in source_files())


@pytest.mark.parametrize("kind", ["prose", "sources"])
def test_no_seed_numbers_in_user_facing_text(kind):
    if kind == "prose":
        hits = [h for p in prose_files() if os.path.isfile(p) for h in hits_in_prose(p)]
    else:
        hits = [h for p in source_files() for h in hits_in_source(p)]
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
