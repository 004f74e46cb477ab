"""Starts and stops one evert server for a test.

The server runs from $EVERT_BIN on 127.0.0.1 with a free Kafka port and a
fresh temporary data directory; it is stopped with SIGTERM by its PID (never
by name), and a server that does not exit is killed by the same PID.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

LISTENING = re.compile(r"listening kafka=127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 30.0  # the sanitizer build starts slowly
STOP_TIMEOUT_S = 30.0


def evert_binary():
    path = os.environ.get("EVERT_BIN")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("set EVERT_BIN to the evert executable (ctest does this)")
    return path


class EvertServer:
    def __init__(self, extra_args=()):
        self.data_dir = tempfile.mkdtemp(prefix="evert-robustness-")
        self.log_path = os.path.join(self.data_dir, "server.log")
        self._log = open(self.log_path, "wb")
        args = [evert_binary(), "serve", "--data-dir", os.path.join(self.data_dir, "data"),
                "--host", "127.0.0.1", "--kafka-port", "0", "--pg-port", "0", "--http-port", "0",
                *extra_args]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        self.pid = self.proc.pid
        self.port = self._wait_for_port()

    def _wait_for_port(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            m = LISTENING.search(self.log())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"evert exited with {self.proc.returncode} at start:\n{self.log()}")
            time.sleep(0.02)
        self._kill()
        raise RuntimeError(f"evert did not report its port within {START_TIMEOUT_S}s:\n{self.log()}")

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def _kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        """SIGTERM, then waits. Returns (exit code, seconds taken)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
                return None, time.monotonic() - start
        return self.proc.returncode, time.monotonic() - start

    def cleanup(self):
        self._kill()
        self._log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
