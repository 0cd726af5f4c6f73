"""Demo: tn-keysetup against a throwaway sshd on loopback (used until the relay demo exists)."""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
import harness  # noqa: E402

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
keysetup = os.path.join(build, "tools", "tn-keysetup", "tn-keysetup")
with harness.Sshd(password_auth=True) as sshd:
    client = harness.ClientHome()
    try:
        target = f"{sshd.user.name}@127.0.0.1"
        print(f"$ tn-keysetup --accept-new --password-stdin -p {sshd.port} {target}", flush=True)
        r = subprocess.run([keysetup, "--accept-new", "--password-stdin", "-p", str(sshd.port), target],
                           input=sshd.user.password + "\n", text=True, env=client.env())
        print(f"$ tn-keysetup --check -p {sshd.port} {target}; echo $?", flush=True)
        c = subprocess.run([keysetup, "--check", "-p", str(sshd.port), target], env=client.env(),
                           stdin=subprocess.DEVNULL)
        print(c.returncode)
        sys.exit(r.returncode or c.returncode)
    finally:
        client.close()
