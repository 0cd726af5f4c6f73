"""The bash completions offer what a user has: SSH hosts as bash-completion's ssh completion finds them
(Host aliases of ~/.ssh/config and its Includes, plain known_hosts names), the serve and use names of
the running vnet (else of its config), and installed Lua policies by name. Each completion file is
sourced from the source tree in a clean bash, with a temp HOME and the built tools on PATH."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "relay"))
from relay_env import Relay, VNET  # noqa: E402
import harness  # noqa: E402

ROOT = os.environ.get("TN_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


def _q(w):
    return "'" + w.replace("'", "'\\''") + "'"


def complete(words, home, env=None, path_dirs=()):
    """Runs the completion function of words[0] for COMP_WORDS=words; returns the set offered."""
    name = words[0]
    script = f"""
source {ROOT}/completions/{name}
fn=$(complete -p {name} | sed -E 's/.*-F ([^ ]+).*/\\1/')
COMP_WORDS=({' '.join(_q(w) for w in words)})
COMP_CWORD={len(words) - 1}
"$fn" {name} {_q(words[-1])} {_q(words[-2])}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    full_env = {"HOME": home, "PATH": ":".join([*path_dirs, os.environ["PATH"]])}
    full_env.update(env or {})
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=30,
                       env=full_env, cwd=home)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return set(r.stdout.split("\n")) - {""}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def home():
    d = tempfile.mkdtemp(prefix="tn-comp-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def ssh_home(home):
    ssh = os.path.join(home, ".ssh")
    write(os.path.join(ssh, "config"),
          "Host web1 *.corp !bad\n  HostName 10.0.0.1\n"
          "Include conf.d/*.conf\n"
          "Include ~/.ssh/extra\n"
          "Include loop\n"
          "  UserKnownHostsFile ~/.ssh/kh_extra\n")
    write(os.path.join(ssh, "conf.d", "a.conf"), "Host=inc-a\n  Include deeper\n")
    write(os.path.join(ssh, "conf.d", "b.conf"), "  host inc-b1 inc-b2\n")
    write(os.path.join(ssh, "conf.d", "skipped.txt"), "Host not-a-conf\n")
    write(os.path.join(ssh, "deeper"), "HOST inc-deep\n")
    write(os.path.join(ssh, "extra"), "Host inc-extra gw-?\n")
    write(os.path.join(ssh, "loop"), "Include loop\nHost looped\n")  # includes itself: must end
    write(os.path.join(ssh, "known_hosts"),
          "# a comment\n"
          "known1,10.1.2.3 ssh-ed25519 AAAAC3Nz\n"
          "|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= ssh-ed25519 AAAAC3Nz\n"
          "[known-port]:2222,[10.9.9.9]:2200 ssh-ed25519 AAAAC3Nz\n"
          "@cert-authority *.ca.example ssh-ed25519 AAAAC3Nz\n"
          "wild*.example ssh-ed25519 AAAAC3Nz\n")
    write(os.path.join(ssh, "kh_extra"), "known-extra ssh-rsa AAAAB3Nz\n")


HOSTS = {"web1", "inc-a", "inc-b1", "inc-b2", "inc-deep", "inc-extra", "looped",
         "known1", "10.1.2.3", "known-port", "10.9.9.9", "known-extra"}


def test_hosts_come_from_config_includes_and_known_hosts(home):
    ssh_home(home)
    assert complete(["tn-exec", "run", ""], home) == HOSTS
    assert complete(["tn-exec", "run", "-H", "inc-"], home) == {h for h in HOSTS if h.startswith("inc-")}
    assert complete(["tn-exec", "get", "known-p"], home) >= {"known-port:"}
    assert complete(["tn-forward", ""], home) == HOSTS | {"status"}
    assert complete(["tn-forward", "-L", "8080:localhost:80", "user@inc-d"], home) == {"user@inc-deep"}
    assert complete(["tn-keysetup", ""], home) == HOSTS
    assert complete(["tn-keysetup", "root@known"], home) == {"root@known1", "root@known-port", "root@known-extra"}


def test_no_ssh_files_is_quiet(home):
    for words in (["tn-exec", "run", ""], ["tn-forward", "x"], ["tn-keysetup", ""]):
        assert complete(words, home) == set(), words


def test_policy_names_from_tn_lua_path_and_the_installed_dir(home):
    mine = os.path.join(home, "policies")
    write(os.path.join(mine, "mine.lua"), "-- a policy\n")
    write(os.path.join(mine, "notes.txt"), "not a policy\n")
    # An installed layout: PREFIX/bin/tn-watch and PREFIX/share/tn/lua, as meson installs them.
    prefix = os.path.join(home, "prefix")
    os.makedirs(os.path.join(prefix, "bin"))
    os.symlink(harness.tool("tn-watch"), os.path.join(prefix, "bin", "tn-watch"))
    write(os.path.join(prefix, "share", "tn", "lua", "installed-one.lua"), "-- shipped\n")
    got = complete(["tn-watch", "run", "--policy", ""], home, env={"TN_LUA_PATH": mine},
                   path_dirs=[os.path.join(prefix, "bin")])
    assert {"mine", "installed-one"} <= got
    assert not {"mine.lua", "notes", "installed-one.lua"} & got


VNET_TOML = """[route]
address = "127.0.0.1:1"
token = "t"
tls = false

[vnet]
name = "home"
group = "g"

[[serve]]
name = "ssh"
port = 22

[[serve]]
name = 'web'   # a comment
port = 80

[[use]]
name = "db"
id = 5
port = 5432
"""


def test_vnet_names_from_the_config_when_no_vnet_runs(home):
    cfg = os.path.join(home, "home.toml")
    write(cfg, VNET_TOML)
    env = {"TN_STATE_DIR": os.path.join(home, "state")}
    path = [os.path.dirname(VNET)]
    assert complete(["tn-vnet", "-c", cfg, "ctl", "serve", "open", ""], home, env, path) == {"ssh", "web"}
    assert complete(["tn-vnet", "-c", cfg, "ctl", "use", "close", ""], home, env, path) == {"db"}
    assert complete(["tn-vnet", "-c", cfg, "ctl", "serve", "new", ""], home, env, path) == set()


def test_vnet_ctl_options_between_words_do_not_count_as_words(home):
    sock = os.path.join(home, "x.sock")
    want = {"serve", "use", "serves", "vnet", "vnets"}
    assert complete(["tn-vnet", "ctl", "--socket", sock, "show", ""], home) == want
    assert complete(["tn-vnet", "ctl", "--json", "show", ""], home) == want
    assert complete(["tn-vnet", "ctl", "--socket", sock, "serve", ""], home) == {"open", "close", "new", "run", "delete"}


def test_vnet_names_from_the_running_vnet(home):
    relay = Relay(tls=False)
    try:
        relay.start_route()
        relay.start_vnet("home", serves=[{"name": "from-config", "id": 701, "port": 9}],
                         uses=[{"name": "a-use", "id": 702, "port": harness.free_port()}])
        relay.wait_connected("home")
        relay.ctl("home", "serve", "new", "added-live", "10", "703")  # only the running vnet knows it
        sock = relay.socket_of("home")
        path = [os.path.dirname(VNET)]
        env = {"TN_STATE_DIR": relay.state}
        assert complete(["tn-vnet", "ctl", "--socket", sock, "serve", "close", ""], home, env, path) == \
            {"from-config", "added-live"}
        assert complete(["tn-vnet", "ctl", "--socket", sock, "use", "open", "a-"], home, env, path) == {"a-use"}
    finally:
        relay.close()
