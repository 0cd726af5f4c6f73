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
