"""tn-tun warns at start when a file holding a secret (private key, pre-shared key) can be read by
its group or by others, through the one shared check (tn::secret_file_warning), server and client."""
import os
import subprocess

import pytest

import tun_net

SERVER = '[server]\nprivate_key_file = "server.key"\n[[peer]]\nname = "a"\npublic_key = "{pub}"\n'
CLIENT = '[client]\nserver = "127.0.0.1:51820"\nprivate_key_file = "client.key"\nserver_public_key = "{pub}"\n'


def keyfile(tool, path):
    subprocess.run([tool, "keygen", "-o", str(path)], check=True)
    with open(path) as f:
        return subprocess.run([tool, "pubkey"], stdin=f, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("role", ["server", "client"])
def test_a_private_key_others_or_the_group_can_read_is_warned_about(tmp_path, role):
    tool = tun_net.harness.tool("tn-tun")
    key = tmp_path / f"{role}.key"
    pub = keyfile(tool, key)
    conf = tmp_path / f"{role}.toml"
    other = keyfile(tool, tmp_path / "other.key")  # the peer (for a server) or the server (for a client)
    assert other != pub
    conf.write_text((SERVER if role == "server" else CLIENT).format(pub=other))

    def check():
        r = subprocess.run([tool, role, "-c", str(conf), "--check-config"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stderr

    assert "readable by" not in check()
    os.chmod(key, 0o644)
    out = check()
    assert "readable by others (mode 0644)" in out and f"chmod 600 {key}" in out and "WARN" in out, out
    os.chmod(key, 0o640)
    assert "readable by its group (mode 0640)" in check()


@pytest.mark.parametrize("role", ["server", "client"])
def test_a_preshared_key_file_others_can_read_is_warned_about(tmp_path, role):
    tool = tun_net.harness.tool("tn-tun")
    pub = keyfile(tool, tmp_path / f"{role}.key")
    other = keyfile(tool, tmp_path / "other.key")
    psk = tmp_path / "peer.psk"
    subprocess.run([tool, "genpsk", "-o", str(psk)], check=True)
    conf = tmp_path / f"{role}.toml"
    conf.write_text((SERVER if role == "server" else CLIENT).format(pub=other) + 'preshared_key_file = "peer.psk"\n')
    assert pub != other
    r = subprocess.run([tool, role, "-c", str(conf), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 0 and "readable by" not in r.stderr, r.stderr
    os.chmod(psk, 0o644)
    r = subprocess.run([tool, role, "-c", str(conf), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 0 and f"{psk} holds a secret but is readable by others (mode 0644)" in r.stderr, r.stderr
    psk.write_text("A" * 43 + "=\n")  # base64 of 32 zero bytes: no key at all
    r = subprocess.run([tool, role, "-c", str(conf), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 78 and "32 zero bytes is no key" in r.stderr, r.stderr


def test_a_server_refuses_a_state_dir_others_can_enter(tmp_path):
    """Its control socket lives there: another local user must never reach it (the check every tn daemon
    shares, base/control_socket.hpp). Exit 78 with the chmod that fixes it, and no TUN device left."""
    tun_net.skip_unless_possible()
    t = tun_net.Topology(names=(), hub=False)
    try:
        t.add_ns("srv", "tn")
        other = t.keypair("peer")
        conf = t.write("server.toml", f'[server]\nlisten = "0.0.0.0:51820"\nsubnet = "10.97.0.0/24"\ntun = "tn0"\n'
                                      f'private_key_file = "{t.path("server.key")}"\n'
                                      f'[[peer]]\nname = "a"\npublic_key = "{other}"\n')
        t.keypair("server")
        state = t.path("state-server")
        os.makedirs(state, mode=0o700)
        os.chmod(state, 0o755)
        p = t.start("server", "srv", "server", "-c", conf)
        assert p.wait(timeout=60) == 78, t.log("server")
        assert f"state directory {state} is open to other users (mode 0755)" in t.log("server")
        assert f"chmod 700 {state}" in t.log("server")
        assert t.exec("srv", "ip", "link", "show", "tn0", check=False).returncode != 0  # no device left behind
    finally:
        t.close()
