"""Starts and stops an evert server for one integration test.

Each test gets its own server on a free port (--kafka-port 0) with its own
temporary data directory; EvertTestCase wires that up in setUp and tears it
down (server first, then the directory) even when the test fails. When a test
fails or errors, the server's log is printed to stderr so the failure can be
read next to what the broker said.

The binary is $EVERT_BIN (ctest sets it); by default build-it/evert in the
repository.
"""

import collections
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVERT_BIN = os.environ.get("EVERT_BIN") or os.path.join(REPO_DIR, "build-it", "evert")

_LISTENING = re.compile(r"listening kafka=127\.0\.0\.1:(\d+)")
_LISTENING_HTTP = re.compile(r"listening kafka=\S+ http=127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 20.0


def _die_with_parent():
    # Runs in the child before exec: if the test process dies without its
    # cleanups (a crash in a client library), the kernel SIGKILLs the server.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ServerError(AssertionError):
    """The server did not start, or did not stop cleanly."""


class EvertServer:
    """One evert process serving `data_dir`. Its stderr goes to `log_path`.

    start() and stop() may alternate any number of times (restart); each start
    picks fresh free ports, so `bootstrap` and `http_port` change across
    restarts.
    """

    def __init__(self, data_dir, log_path, extra_args=()):
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.http_port = None  # from the listening line; None if it names none
        self._log_start = 0  # where the current run's lines begin in the log

    @property
    def bootstrap(self):
        assert self.port is not None, "server is not running"
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self):
        """Base URL of the HTTP API, e.g. http://127.0.0.1:8080 (no trailing slash)."""
        assert self.http_port is not None, "server is not running or logged no http port"
        return f"http://127.0.0.1:{self.http_port}"

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, whole=True):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return ""
        return text if whole else text[self._log_start:]

    def start(self, timeout_s=START_TIMEOUT_S):
        assert not self.running(), "server already running"
        if not os.access(EVERT_BIN, os.X_OK):
            raise ServerError(f"evert binary not found at {EVERT_BIN} (set EVERT_BIN)")
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write(f"==== evert serve {' '.join(self.extra_args)} (harness start at {time.time():.3f})\n")
            log.flush()
            self._log_start = log.tell()
            cmd = [EVERT_BIN, "serve", "--data-dir", self.data_dir, "--host", "127.0.0.1",
                   "--kafka-port", "0", "--http-port", "0", "--pg-port", "0", *self.extra_args]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout_s
        while True:
            m = _LISTENING.search(self.log_text(whole=False))
            if m:
                self.port = int(m.group(1))
                m_http = _LISTENING_HTTP.search(self.log_text(whole=False))
                self.http_port = int(m_http.group(1)) if m_http else None
                return self
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise ServerError(f"evert exited with status {rc} before listening:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"evert did not log 'listening kafka=' within {timeout_s} s:\n{self.log_text()}")
            time.sleep(0.01)

    def stop(self, timeout_s=STOP_TIMEOUT_S):
        """SIGTERM, wait, and check the exit was clean (status 0, 'stopped cleanly')."""
        if self.proc is None:
            return
        proc, self.proc, self.port, self.http_port = self.proc, None, None, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ServerError(f"evert (pid {proc.pid}) did not exit within {timeout_s} s of SIGTERM; killed")
        run_log = self.log_text(whole=False)
        if rc != 0:
            raise ServerError(f"evert (pid {proc.pid}) exited with status {rc}")
        if "stopped cleanly" not in run_log:
            raise ServerError(f"evert (pid {proc.pid}) exited 0 without logging 'stopped cleanly'")

    def kill(self):
        """SIGKILL by PID: for cleanup after something went wrong, and for
        crash tests (a later start() recovers the same data directory)."""
        if self.proc is None:
            return
        proc, self.proc, self.port, self.http_port = self.proc, None, None, None
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def stored_codecs(self, topic):
        """{codec: batch count} over every partition of `topic` as stored on
        disk (from `evert log dump`), to check what a client really sent."""
        counts = collections.Counter()
        topic_dir = os.path.join(self.data_dir, "topics", topic)
        for part in sorted(os.listdir(topic_dir)):
            if not part.isdigit():
                continue
            out = subprocess.run([EVERT_BIN, "log", "dump", os.path.join(topic_dir, part)], capture_output=True,
                                 text=True, timeout=120, check=True).stdout
            counts.update(re.findall(r"compresscodec: (\w+)", out))
        return dict(counts)

    def restart(self):
        self.stop()
        return self.start()


class EvertTestCase(unittest.TestCase):
    """A test with its own evert (self.server) and temp dir (self.tmp_dir)."""

    # Extra `evert serve` flags for every test of the class.
    server_args = ()

    def setUp(self):
        self.tmp_dir = tempfile.mkdtemp(prefix="evert-it-")
        self.addCleanup(shutil.rmtree, self.tmp_dir, ignore_errors=True)
        self.server = EvertServer(os.path.join(self.tmp_dir, "data"), os.path.join(self.tmp_dir, "server.log"),
                                  self.server_args)
        self._server_log = ""
        self.addCleanup(self._stop_server)
        self.server.start()

    @property
    def bootstrap(self):
        return self.server.bootstrap

    def _stop_server(self):
        try:
            self.server.stop()  # also reports a server that crashed during the test
        except Exception:
            self.server.kill()
            raise
        finally:
            self._server_log = self.server.log_text()

    def run(self, result=None):
        if result is None:
            return super().run(result)
        bad_before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > bad_before:
            sys.stderr.write(f"\n---- evert log for {self.id()} ----\n{self._server_log}---- end of evert log ----\n")
            sys.stderr.flush()
        return out

    def scratch_path(self, name):
        """A path inside this test's temp dir (removed with it)."""
        return os.path.join(self.tmp_dir, name)
