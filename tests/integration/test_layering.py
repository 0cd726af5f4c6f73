"""The layer rules of doc/ARCHITECTURE.md ("Layer rules"), checked on the #include lines of lib/ and tools/:
  1. a lib/ folder includes only the lib/ folders its row allows, and never tools/;
  2. a third-party library is included only behind its seam (toml++: lib/config/*.cpp; libssh: lib/ssh/*.cpp;
     Lua: lib/policy; libsodium: lib/tun, lib/relay/e2e.cpp; OpenSSL: lib/relay, lib/ssh/*.cpp; Asio: lib/relay/io_*);
  3. a tool includes lib/, tools/common and its own files only; of the libraries above only Asio and
     OpenSSL, and those only in its io files (io_*, *_io);
  4. every core (core.*, *_core.*) includes no I/O header: no Asio, libssh, Lua, toml++, openssl/ssl.h, no
     poll/epoll/fcntl/unistd/ioctl/streams/stdio, no io file of lib/ or of its tool.
The checks run on the real tree and, to prove they can fail, on a temp copy with planted violations."""
import contextlib
import os
import re
import shutil

import pytest

import harness

ROOT = harness.SOURCE_ROOT
SOURCE_EXT = (".hpp", ".cpp", ".h")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
LUA = ("lua.h", "lua.hpp", "lualib.h", "lauxlib.h", "luaconf.h")

# lib folder -> the lib folders it may include (doc/ARCHITECTURE.md, "lib/ folders", column "may include").
LIB_ALLOWED = {
    "base": set(),
    "config": {"base"},
    "ssh": {"base"},
    "policy": {"base"},
    "supervise": {"base"},
    "relay": {"base"},
    "tun": {"base"},
}
# Third-party headers (by include prefix) -> predicate on (lib folder, file name) that may include them.
THIRD_PARTY = {
    "toml++/": ("toml++", lambda folder, name: folder == "config" and name.endswith(".cpp")),
    "libssh/": ("libssh", lambda folder, name: folder == "ssh" and name.endswith(".cpp")),
    "lua": ("Lua", lambda folder, name: folder == "policy"),
    "sodium": ("libsodium", lambda folder, name: folder == "tun" or (folder == "relay" and name == "e2e.cpp")),
    "openssl/": ("OpenSSL", lambda folder, name: folder == "relay" or (folder == "ssh" and name.endswith(".cpp"))
                 or (folder == "base" and name == "base64.cpp")),
    "boost/asio": ("Asio", lambda folder, name: folder == "relay" and name.startswith("io_")),
    "systemd/": ("libsystemd", lambda folder, name: folder == "base" and name == "sd_notify.cpp"),
}
TOOL_IO_ONLY = {"boost/asio", "openssl/"}  # what a tool's io files may include; the rest never in tools/
CORE_IO_LIBS = {"Asio", "libssh", "Lua", "toml++"}  # crypto (libsodium, OpenSSL EVP) is no I/O
CORE_IO = ("openssl/ssl.h", "openssl/bio.h", "poll.h", "sys/epoll.h", "fcntl.h",
           "unistd.h", "sys/ioctl.h", "fstream", "iostream", "cstdio", "stdio.h")

# Known exceptions, each (file, header) with the issue that removes it. An entry that no longer occurs
# fails the test too: delete it once its file is fixed.
KNOWN_EXCEPTIONS = set()


def is_io_file(name):
    stem = name.split(".")[0]
    return stem.startswith("io_") or stem.endswith("_io")


def is_core_file(name):
    stem = name.split(".")[0]
    return stem == "core" or stem.endswith("_core")


def third_party(inc):
    """(prefix, label, allowed) of the third-party library `inc` belongs to, or None."""
    if inc in LUA or inc.startswith("lua5"):
        inc = "lua"
    elif inc == "sodium.h" or inc.startswith("sodium/"):
        inc = "sodium"
    for prefix, (label, allowed) in THIRD_PARTY.items():
        if inc.startswith(prefix) and (prefix not in ("lua", "sodium") or inc == prefix):
            return prefix, label, allowed
    return None


def sources(root, top):
    """(path relative to root, first folder below top, file name, [(delimiter, include)]) of every source file."""
    base = os.path.join(root, top)
    for folder in sorted(os.listdir(base)):
        d = os.path.join(base, folder)
        if not os.path.isdir(d):
            continue
        for dirpath, _, files in os.walk(d):
            for f in sorted(files):
                if f.endswith(SOURCE_EXT):
                    p = os.path.join(dirpath, f)
                    with open(p, encoding="utf-8") as fh:
                        yield os.path.relpath(p, root), folder, f, INCLUDE.findall(fh.read())


def quoted(delim):
    """A project include ("base/log.hpp"), as opposed to a system or library one (<sys/socket.h>)."""
    return delim == '"'


def lib_violations(root):
    bad = []
    folders = {f for f in os.listdir(os.path.join(root, "lib")) if os.path.isdir(os.path.join(root, "lib", f))}
    bad += [f"lib/{f}: no layer rule (add it to LIB_ALLOWED and doc/ARCHITECTURE.md)" for f in sorted(folders - set(LIB_ALLOWED))]
    for path, folder, name, includes in sources(root, "lib"):
        for delim, inc in includes:
            top = inc.split("/")[0]
            if quoted(delim) and "/" in inc and top in folders and top != folder and top not in LIB_ALLOWED.get(folder, set()):
                bad.append(f"{path}: {inc} (lib/{folder} may include only {sorted(LIB_ALLOWED.get(folder, ()))})")
            if quoted(delim) and inc.startswith(("tools/", "common/", "../")):
                bad.append(f"{path}: {inc} (lib/ never includes tools/)")
            tp = third_party(inc)
            if tp and not tp[2](folder, name):
                bad.append(f"{path}: {inc} ({tp[1]} stays behind its seam)")
    return bad


def tool_violations(root):
    bad = []
    lib_folders = set(os.listdir(os.path.join(root, "lib")))
    for path, tool, name, includes in sources(root, "tools"):
        for delim, inc in includes:
            top = inc.split("/")[0]
            if quoted(delim) and (inc.startswith("../") or ("/" in inc and top not in lib_folders and top != "common")):
                bad.append(f"{path}: {inc} (a tool includes lib/, tools/common and its own files)")
            tp = third_party(inc)
            if tp and not (tp[0] in TOOL_IO_ONLY and is_io_file(name)):
                where = "only in the tool's io files" if tp[0] in TOOL_IO_ONLY else "only inside lib/"
                bad.append(f"{path}: {inc} ({tp[1]} {where})")
    return bad


def core_violations(root):
    bad = []
    for top in ("lib", "tools"):
        for path, folder, name, includes in sources(root, top):
            if not is_core_file(name):
                continue
            for delim, inc in includes:
                tp = third_party(inc)
                if inc.startswith(CORE_IO) or (tp and tp[1] in CORE_IO_LIBS) or is_io_file(os.path.basename(inc)):
                    bad.append(f"{path}: {inc} (a core does no I/O)")
    return bad


def violations(root):
    """Every rule's violations, less the known exceptions; and the known exceptions that no longer occur."""
    found = lib_violations(root) + tool_violations(root) + core_violations(root)
    seen, left = set(), []
    for v in found:
        path, rest = v.split(": ", 1)
        key = (path, rest.split(" ")[0])
        if key in KNOWN_EXCEPTIONS:
            seen.add(key)
        else:
            left.append(v)
    stale = sorted(KNOWN_EXCEPTIONS - seen)
    return left, stale


def test_the_tree_follows_the_layer_rules():
    left, stale = violations(ROOT)
    assert not left, "layer violations (doc/ARCHITECTURE.md, Layer rules):\n" + "\n".join(left)
    assert not stale, "known exceptions that no longer occur: remove them from KNOWN_EXCEPTIONS:\n" + \
        "\n".join(f"{p}: {i}" for p, i in stale)


@pytest.fixture(scope="module")
def clean_tree(tmp_path_factory):
    """One copy of lib/ and tools/ (sources only) for the module; each test plants into it and undoes."""
    root = tmp_path_factory.mktemp("tree")
    for top in ("lib", "tools"):
        shutil.copytree(os.path.join(ROOT, top), root / top,
                        ignore=lambda d, names: [n for n in names if not os.path.isdir(os.path.join(d, n))
                                                 and not n.endswith(SOURCE_EXT)])
    return root


@pytest.fixture
def tree(clean_tree):
    """The copy, with every file a test changed or added put back afterwards."""
    saved = {}
    yield clean_tree, saved
    for path, text in saved.items():
        if text is None:
            os.unlink(path)
        else:
            with open(path, "w") as f:
                f.write(text)
    for d in ("lib/newfolder",):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(clean_tree, d))


def plant(tree, rel, line=None, replace=None):
    """Adds `line` at the top of file `rel` of the copy (made if missing), or applies (old, new) `replace`."""
    root, saved = tree
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    text = open(p).read() if os.path.exists(p) else None
    saved.setdefault(p, text)
    text = text or ""
    text = text.replace(*replace) if replace else line + "\n" + text
    with open(p, "w") as f:
        f.write(text)


PLANTED = [
    ("lib/base/strings.cpp", '#include "relay/wire.hpp"', "lib/base may include only"),
    ("lib/tun/wire.cpp", '#include "ssh/session.hpp"', "lib/tun may include only"),
    ("lib/supervise/core.cpp", '#include "tools/tn-watch/runner.hpp"', "never includes tools/"),
    ("lib/tun/pool.cpp", "#include <boost/asio.hpp>", "Asio stays behind its seam"),
    ("lib/relay/wire.cpp", "#include <boost/asio.hpp>", "Asio stays behind its seam"),
    ("lib/ssh/session.hpp", "#include <libssh/libssh.h>", "libssh stays behind its seam"),
    ("lib/config/document.hpp", "#include <toml++/toml.h>", "toml++ stays behind its seam"),
    ("lib/newfolder/x.hpp", "#include <string>", "no layer rule"),
    ("tools/tn-exec/runner.cpp", "#include <libssh/libssh.h>", "libssh only inside lib/"),
    ("tools/tn-watch/runner.cpp", "#include <lua.hpp>", "Lua only inside lib/"),
    ("tools/tn-tun/keys.cpp", "#include <sodium.h>", "libsodium only inside lib/"),
    ("tools/tn-route/route_server.hpp", "#include <boost/asio.hpp>", "Asio only in the tool's io files"),
    ("tools/tn-tun/io_udp.cpp", "#include <libssh/libssh.h>", "libssh only inside lib/"),
    ("tools/tn-route/route_http.cpp", '#include "../tn-vnet/vnet_agent.hpp"', "its own files"),
    ("tools/tn-route/route_http.cpp", '#include "tn-vnet/vnet_agent.hpp"', "its own files"),
    # A known exception's file gains another header: only the listed pair is excused.
    ("tools/tn-forward/conn.cpp", "#include <openssl/evp.h>", "OpenSSL only in the tool's io files"),
    ("lib/supervise/core.cpp", "#include <poll.h>", "a core does no I/O"),
    ("lib/tun/server_core.hpp", '#include "relay/io_stream.hpp"', "a core does no I/O"),
    ("tools/tn-forward/link_core.cpp", "#include <unistd.h>", "a core does no I/O"),
    ("tools/tn-forward/link_core.hpp", "#include <fstream>", "a core does no I/O"),
    ("tools/tn-tun/route_core.cpp", '#include "io_udp.hpp"', "a core does no I/O"),
]


@pytest.mark.parametrize("rel,line,why", PLANTED, ids=[f"{r}:{l.split()[-1]}" for r, l, _ in PLANTED])
def test_a_planted_violation_fails(tree, rel, line, why):
    assert violations(tree[0]) == ([], []), "the copy must start clean"
    plant(tree, rel, line)
    left, _ = violations(tree[0])
    assert any(rel.startswith(v.split(": ")[0]) and why in v for v in left), left


@pytest.mark.parametrize("rel,line", [
    ("tools/tn-tun/io_udp.cpp", "#include <boost/asio.hpp>"),   # a tool's io file may use Asio
    ("tools/tn-forward/tunnel_io.cpp", "#include <openssl/evp.h>"),
    ("lib/relay/io_pump.cpp", "#include <boost/asio.hpp>"),
    ("lib/ssh/session.cpp", "#include <libssh/libssh.h>"),
    ("lib/tun/server_core.hpp", "#include <sys/socket.h>"),   # address types are not I/O
])
def test_what_the_rules_allow_passes(tree, rel, line):
    plant(tree, rel, line)
    assert violations(tree[0]) == ([], [])


def test_a_fixed_exception_must_leave_the_list(tree):
    if not KNOWN_EXCEPTIONS:
        pytest.skip("no known exceptions left")
    path, header = sorted(KNOWN_EXCEPTIONS)[0]
    plant(tree, path, replace=(f"#include <{header}>", ""))
    assert violations(tree[0])[1] == [(path, header)]
