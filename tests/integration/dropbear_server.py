"""A real Dropbear server on loopback for one throwaway user: the second SSH implementation tn-exec and
tn-forward must work against. Same surface as harness.Sshd: user, port, listen, host_pub,
known_hosts_line(), log(), start(), close(), and a context manager."""
import os
import shutil
import subprocess
import tempfile

import harness

DROPBEAR = "/usr/sbin/dropbear"


def available():
    return os.access(DROPBEAR, os.X_OK) and shutil.which("dropbearkey") is not None


class Dropbear(harness.ServerFixture):
    # Dropbear forks one process per connection: they go with the listener at close.
    def __init__(self, listen="127.0.0.1", password_auth=False):
        if not harness.is_root():
            raise RuntimeError("Dropbear needs root (to create the test user)")
        self.dir = tempfile.mkdtemp(prefix="tn-dropbear-")
        os.chmod(self.dir, 0o755)  # the test user's home lives below it
        self.listen = listen
        self.password_auth = password_auth
        self.user = harness.TestUser(self.dir)
        self.host_key = os.path.join(self.dir, "host_ed25519")
        harness.run(["dropbearkey", "-t", "ed25519", "-f", self.host_key])
        out = harness.run(["dropbearkey", "-y", "-f", self.host_key]).stdout
        self.host_pub = next(" ".join(line.split()[:2]) for line in out.splitlines() if line.startswith("ssh-"))
        self.log_path = os.path.join(self.dir, "dropbear.log")
        self.port = None
        self.proc = None

    def known_hosts_line(self):
        return f"[{self.listen}]:{self.port} {self.host_pub}\n"

    def start(self):
        for attempt in range(5):
            self.port = harness.free_port()
            # -F -E: foreground, log to stderr; -s: keys only; -w: no root; -m: no motd; -P: our own pid
            # file, not /var/run's.
            cmd = [DROPBEAR, "-F", "-E", *([] if self.password_auth else ["-s"]), "-w", "-m", "-r", self.host_key,
                   "-p", f"{self.listen}:{self.port}", "-P", os.path.join(self.dir, "dropbear.pid")]
            with open(self.log_path, "a") as log:
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            try:
                harness.wait_port(self.port, self.listen, proc=self.proc)
                return self
            except RuntimeError:
                if attempt == 4:
                    raise RuntimeError("dropbear did not start:\n" + self.log())
        return self
