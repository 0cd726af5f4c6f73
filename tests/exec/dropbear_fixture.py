"""A real Dropbear server (the second SSH implementation tn-exec must work against) for one throwaway
user, with the same surface as harness.Sshd: user, port, host_pub, known_hosts_line(), log(), close()."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

DROPBEAR = "/usr/sbin/dropbear"


def available():
    return os.access(DROPBEAR, os.X_OK) and shutil.which("dropbearkey") is not None


class Dropbear:
    def __init__(self, listen="127.0.0.1"):
        if not harness.is_root():
            raise RuntimeError("Dropbear needs root (to create the test user)")
        self.dir = tempfile.mkdtemp(prefix="tn-dropbear-")
        os.chmod(self.dir, 0o755)  # the test user's home lives below it
        self.listen = listen
        self.user = harness.TestUser(self.dir)
        self.host_key = os.path.join(self.dir, "host_ed25519")
        subprocess.run(["dropbearkey", "-t", "ed25519", "-f", self.host_key], check=True, capture_output=True)
        out = subprocess.run(["dropbearkey", "-y", "-f", self.host_key], check=True, capture_output=True,
                             text=True).stdout
        self.host_pub = next(" ".join(l.split()[:2]) for l in out.splitlines() if l.startswith("ssh-ed25519 "))
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.dir, "dropbear.log")

    def known_hosts_line(self):
        return f"[{self.listen}]:{self.port} {self.host_pub}\n"

    def start(self):
        for attempt in range(5):
            self.port = harness.free_port()
            # -F foreground, -E log to stderr, -s keys only, -w no root, -m no motd.
            cmd = [DROPBEAR, "-F", "-E", "-s", "-w", "-m", "-p", f"{self.listen}:{self.port}", "-r", self.host_key,
                   "-P", os.path.join(self.dir, "dropbear.pid")]
            with open(self.log_path, "a") as log:
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            try:
                harness.wait_port(self.port, self.listen, proc=self.proc)
                return self
            except RuntimeError:
                if attempt == 4:
                    raise RuntimeError("dropbear did not start:\n" + self.log())
        return self

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        if self.proc is not None:
            harness.stop_process(self.proc)
            self.proc = None
        self.user.close()
        shutil.rmtree(self.dir, ignore_errors=True)
