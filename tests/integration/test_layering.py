"""The layer rules of doc/ARCHITECTURE.md, checked on the includes: a lib/ folder uses only the folders
before it, and no core code includes Asio, libssh, Lua or toml++."""
import os
import re

import harness

LIB = os.path.join(harness.SOURCE_ROOT, "lib")
# folder -> lib folders it may include
ALLOWED = {
    "base": set(),
    "config": {"base"},
    "ssh": {"base"},
    "io": {"base"},
    "policy": {"base", "supervise"},
    "supervise": {"base"},
    "relay": {"base", "config", "io"},
    "tun": {"base", "config", "io"},
}
THIRD_PARTY = {
    "toml++": {"config"},         # only lib/config/document.cpp parses TOML
    "libssh": {"ssh"},            # callers never see <libssh/...>
}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def sources():
    for folder in sorted(os.listdir(LIB)):
        d = os.path.join(LIB, folder)
        if not os.path.isdir(d):
            continue
        for dirpath, _, files in os.walk(d):
            for f in files:
                if f.endswith((".hpp", ".cpp", ".h")):
                    p = os.path.join(dirpath, f)
                    with open(p, encoding="utf-8") as fh:
                        yield folder, os.path.relpath(p, LIB), fh.read()


def test_every_lib_folder_has_a_rule():
    folders = {f for f in os.listdir(LIB) if os.path.isdir(os.path.join(LIB, f))}
    assert folders <= set(ALLOWED), f"add {sorted(folders - set(ALLOWED))} to ALLOWED and doc/ARCHITECTURE.md"


def test_lib_folders_include_only_earlier_layers():
    bad = []
    for folder, path, text in sources():
        for inc in INCLUDE.findall(text):
            top = inc.split("/")[0]
            if top in ALLOWED and top != folder and top not in ALLOWED[folder]:
                bad.append(f"{path}: {inc}")
            if "/" in inc and top in ("common",) or inc.startswith("tools/"):
                bad.append(f"{path}: {inc} (lib/ never includes tools/)")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_third_party_headers_stay_behind_their_seam():
    bad = []
    for folder, path, text in sources():
        for inc in INCLUDE.findall(text):
            for lib, owners in THIRD_PARTY.items():
                if inc.startswith(lib + "/") and folder not in owners:
                    bad.append(f"{path}: {inc}")
            # Headers of the ssh seam must not leak libssh to callers.
            if folder == "ssh" and path.endswith(".hpp") and inc.startswith("libssh/"):
                bad.append(f"{path}: {inc} (public ssh headers forward-declare libssh types)")
        if os.path.basename(path).startswith("core") or "/core_" in path:
            for inc in INCLUDE.findall(text):
                if inc.startswith(("boost/asio", "libssh/", "lua", "toml++/")):
                    bad.append(f"{path}: {inc} (core code does no I/O)")
    assert not bad, "\n".join(bad)
