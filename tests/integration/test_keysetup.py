"""tn-keysetup against a real sshd: first login by key or password, idempotence, --check, host keys."""
import os
import stat
import subprocess

import pytest

import harness

KEYSETUP = harness.tool("tn-keysetup")


def keysetup(client, sshd, *args, input=None):
    target = f"{sshd.user.name}@127.0.0.1"
    return client.run([KEYSETUP, "-p", str(sshd.port), *args, target], input=input)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_installs_fresh_key_using_existing_key(client, sshd):
    client.trust(sshd)
    sshd.user.authorize(client.key("id_ecdsa", "ecdsa"))  # what already works
    r = keysetup(client, sshd)
    assert r.returncode == 0, r.stderr
    new_pub = read(os.path.join(client.ssh_dir, "id_ed25519.pub")).decode().split()
    assert mode(os.path.join(client.ssh_dir, "id_ed25519")) == 0o600
    assert mode(os.path.join(client.ssh_dir, "id_ed25519.pub")) == 0o644
    lines = read(sshd.user.authorized_keys).decode().splitlines()
    assert len(lines) == 2 and lines[1].split()[:2] == new_pub[:2]
    assert mode(sshd.user.ssh_dir) == 0o700 and mode(sshd.user.authorized_keys) == 0o600
    assert "key login works" in r.stderr

    # The proof must hold without the old key: remove it and log in with OpenSSH using only the new one.
    os.unlink(os.path.join(client.ssh_dir, "id_ecdsa"))
    r = subprocess.run(["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                        "-o", f"UserKnownHostsFile={client.known_hosts}", "-i",
                        os.path.join(client.ssh_dir, "id_ed25519"), "-p", str(sshd.port),
                        f"{sshd.user.name}@127.0.0.1", "echo", "ok"], capture_output=True, text=True,
                       env=client.env(), timeout=30)
    assert r.stdout.strip() == "ok", r.stderr


def test_second_run_changes_nothing(client, sshd):
    client.trust(sshd)
    sshd.user.authorize(client.key("id_ecdsa", "ecdsa"))
    assert keysetup(client, sshd).returncode == 0
    before = read(sshd.user.authorized_keys)
    mtime = os.stat(sshd.user.authorized_keys).st_mtime_ns
    r = keysetup(client, sshd)
    assert r.returncode == 0, r.stderr
    assert "already" in r.stderr
    assert read(sshd.user.authorized_keys) == before
    assert os.stat(sshd.user.authorized_keys).st_mtime_ns == mtime


def test_check_is_1_before_and_0_after(client, sshd):
    client.trust(sshd)
    sshd.user.authorize(client.key("id_ecdsa", "ecdsa"))
    client.key("id_ed25519")
    r = keysetup(client, sshd, "--check")
    assert r.returncode == 1, r.stderr
    assert keysetup(client, sshd).returncode == 0
    r = keysetup(client, sshd, "--check")
    assert r.returncode == 0, r.stderr
    # --check without any key: 1, and nothing is generated
    os.unlink(os.path.join(client.ssh_dir, "id_ed25519"))
    os.unlink(os.path.join(client.ssh_dir, "id_ed25519.pub"))
    assert keysetup(client, sshd, "--check").returncode == 1
    assert not os.path.exists(os.path.join(client.ssh_dir, "id_ed25519"))


def test_unknown_host_key_refused_without_accept_new(client, sshd):
    sshd.user.authorize(client.key("id_ecdsa", "ecdsa"))
    before = read(sshd.user.authorized_keys)
    r = keysetup(client, sshd)
    assert r.returncode == 77, r.stderr
    assert "not known" in r.stderr and "SHA256:" in r.stderr and "--accept-new" in r.stderr
    assert read(sshd.user.authorized_keys) == before
    assert not os.path.exists(client.known_hosts) or sshd.host_pub.split()[1] not in read(client.known_hosts).decode()

    r = keysetup(client, sshd, "--accept-new")
    assert r.returncode == 0, r.stderr
    fp = subprocess.run(["ssh-keygen", "-lf", sshd.host_key + ".pub"], capture_output=True, text=True).stdout.split()[1]
    assert fp in r.stderr  # the fingerprint the user should compare is printed
    # pinned: a plain run now works
    assert keysetup(client, sshd, "--check").returncode == 0


def test_changed_host_key_exits_77(client, sshd):
    client.trust(sshd)
    sshd.user.authorize(client.key("id_ecdsa", "ecdsa"))
    sshd.regenerate_host_key()
    sshd.restart()
    before = read(sshd.user.authorized_keys)
    for extra in ([], ["--accept-new"], ["--check"]):
        r = keysetup(client, sshd, *extra)
        assert r.returncode == 77, (extra, r.stderr)
        assert "HOST KEY CHANGED" in r.stderr
    assert read(sshd.user.authorized_keys) == before


def test_password_first_login(client, sshd_password):
    sshd = sshd_password
    client.trust(sshd)
    r = keysetup(client, sshd, "--password-stdin", input=sshd.user.password + "\n")
    assert r.returncode == 0, r.stderr
    assert "key login works" in r.stderr
    assert keysetup(client, sshd, "--check").returncode == 0
    # A wrong password is refused with 77, not a retry loop.
    os.unlink(os.path.join(client.ssh_dir, "id_ed25519"))
    os.unlink(os.path.join(client.ssh_dir, "id_ed25519.pub"))
    r = keysetup(client, sshd, "--password-stdin", input="wrong\n")
    assert r.returncode == 77, r.stderr


def test_no_tty_no_password_fails_fast(client, sshd_password):
    client.trust(sshd_password)
    r = keysetup(client, sshd_password)  # stdin is /dev/null: must not prompt
    assert r.returncode == 77, r.stderr
    assert "--password-stdin" in r.stderr


def test_missing_final_newline_and_other_lines_kept(client, sshd):
    client.trust(sshd)
    old = client.key("id_ecdsa", "ecdsa")
    os.makedirs(sshd.user.ssh_dir, exist_ok=True)
    original = ("# managed by hand\n" + old + "\nno-pty ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 last-line").encode()
    with open(sshd.user.authorized_keys, "wb") as f:
        f.write(original)
    os.chown(sshd.user.authorized_keys, sshd.user.uid, sshd.user.gid)
    os.chown(sshd.user.ssh_dir, sshd.user.uid, sshd.user.gid)
    os.chmod(sshd.user.authorized_keys, 0o644)  # too open: keysetup tightens it
    r = keysetup(client, sshd)
    assert r.returncode == 0, r.stderr
    after = read(sshd.user.authorized_keys)
    new_pub = read(os.path.join(client.ssh_dir, "id_ed25519.pub")).decode().strip()
    assert after == original + b"\n" + new_pub.encode() + b"\n"
    assert mode(sshd.user.authorized_keys) == 0o600


def test_dry_run_changes_nothing(client, sshd):
    client.trust(sshd)
    sshd.user.authorize(client.key("id_ecdsa", "ecdsa"))
    before = read(sshd.user.authorized_keys)
    r = keysetup(client, sshd, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would generate ed25519 key" in r.stdout
    assert "would append" in r.stdout
    assert not os.path.exists(os.path.join(client.ssh_dir, "id_ed25519"))
    assert read(sshd.user.authorized_keys) == before


def test_dry_run_that_needs_a_password_reports_and_exits_0(client, sshd):
    # No key works yet and stdin is no TTY: a real run would need a password; a dry run says so.
    client.trust(sshd)
    r = keysetup(client, sshd, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would generate ed25519 key" in r.stdout
    assert f"would log in to {sshd.user.name}@127.0.0.1:{sshd.port} with a password" in r.stdout
    assert "authorized_keys" in r.stdout
    assert not os.path.exists(os.path.join(client.ssh_dir, "id_ed25519"))
    assert not os.path.exists(sshd.user.authorized_keys)


def test_custom_identity_and_ssh_config_alias(client, sshd):
    client.trust(sshd)
    sshd.user.authorize(client.key("id_ecdsa", "ecdsa"))
    with open(os.path.join(client.ssh_dir, "config"), "w") as f:
        f.write(f"Host box\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user.name}\n")
    key = os.path.join(client.dir, "deploy_key")
    r = client.run([KEYSETUP, "-i", key, "--type", "rsa", "box"])
    assert r.returncode == 0, r.stderr
    assert read(key + ".pub").decode().startswith("ssh-rsa ")
    assert client.run([KEYSETUP, "-i", key, "--check", "box"]).returncode == 0


def test_cli_contract(client):
    r = client.run([KEYSETUP, "--help"])
    assert r.returncode == 0 and "--accept-new" in r.stdout
    r = client.run([KEYSETUP, "--version"])
    assert r.returncode == 0 and r.stdout.strip().startswith("tn-keysetup ")
    r = client.run([KEYSETUP, "--no-such-option", "h"])
    assert r.returncode == 64 and "tn-keysetup" in r.stderr
    r = client.run([KEYSETUP])
    assert r.returncode == 64 and "no host given" in r.stderr
    r = client.run([KEYSETUP, "bad@host:x"])
    assert r.returncode == 64 and 'invalid port "x"' in r.stderr
    cfg = os.path.join(client.dir, "k.toml")
    with open(cfg, "w") as f:
        f.write('[keysetup]\nhots = "x"\n')
    r = client.run([KEYSETUP, "-c", cfg, "--check-config"])
    assert r.returncode == 78
    assert f'{cfg}:2:1: error: unknown key "keysetup.hots" (did you mean "host"?)' in r.stderr
    with open(cfg, "w") as f:
        f.write('[keysetup]\nhost = "example.org"\n')
    assert client.run([KEYSETUP, "-c", cfg, "--check-config"]).returncode == 0


def test_unreachable_host_is_69(client):
    port = harness.free_port()  # nothing listens there
    r = client.run([KEYSETUP, "--connect-timeout", "5", "-p", str(port), "127.0.0.1"])
    assert r.returncode == 69, r.stderr
    assert "cannot connect" in r.stderr


def test_example_provision_script(client, sshd):
    """examples/tn-keysetup/provision.sh: installs once, then reports ok without changing anything."""
    script = os.path.join(harness.SOURCE_ROOT, "examples/tn-keysetup/provision.sh")
    client.trust(sshd)
    sshd.user.authorize(client.key("id_ecdsa", "ecdsa"))
    env = client.env(PATH=os.path.dirname(KEYSETUP) + ":" + os.environ["PATH"])
    target = f"{sshd.user.name}@127.0.0.1:{sshd.port}"
    r = subprocess.run([script, target], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"{target}: installed", r.stdout + r.stderr
    before = read(sshd.user.authorized_keys)
    r = subprocess.run([script, target, "nobody@127.0.0.1:1"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert f"{target}: ok" in r.stdout and "nobody@127.0.0.1:1: FAILED" in r.stderr
    assert read(sshd.user.authorized_keys) == before


def test_example_config_parses(client):
    cfg = os.path.join(harness.SOURCE_ROOT, "examples/tn-keysetup/keysetup.toml")
    r = client.run([KEYSETUP, "-c", cfg, "--check-config"])
    assert r.returncode == 0, r.stderr
