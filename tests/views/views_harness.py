"""The SQL-over-HTTP side of the views suites.

Servers come from tests/integration/evert_server.py (imported, not copied):
each test gets its own `evert serve` on free ports with its own data
directory. This module adds a small client for `POST /v1/sql` and the view
status routes of docs/SQL.md, using only the standard library.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))

from evert_server import EvertServer, EvertTestCase, ServerError  # noqa: E402

__all__ = ["EvertServer", "EvertTestCase", "ServerError", "SqlClient", "SqlError", "ViewsTestCase", "http_request",
           "wait_until"]

HTTP_TIMEOUT_S = 60.0
# How long a statement may wait for views to catch up (the server's default is
# 5000 ms; a backfill after a restart or a rebuild can take longer).
WAIT_TIMEOUT_MS = 30000


class SqlError(Exception):
    """A statement the server refused: the HTTP status and the error object
    of docs/SQL.md ({"code", "message", "position", "statement"}), plus the
    results of the statements before it."""

    def __init__(self, http_status, error, results, body):
        self.http_status = http_status
        self.error = error if isinstance(error, dict) else {}
        self.code = self.error.get("code")
        self.message = self.error.get("message")
        self.position = self.error.get("position")
        self.statement = self.error.get("statement")
        self.results = results
        self.body = body
        super().__init__(f"HTTP {http_status} SQLSTATE {self.code}: {self.message} "
                         f"(position {self.position}, statement {self.statement})")


def http_request(method, url, body=None, content_type="application/json", timeout_s=HTTP_TIMEOUT_S):
    """(status, body bytes) of one request; HTTP error statuses are returned,
    not raised."""
    data = body if body is None or isinstance(body, bytes) else body.encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class SqlClient:
    """POST /v1/sql and the view routes against one running server. The base
    URL is read from the server on every call, so a client survives restarts."""

    def __init__(self, server):
        self.server = server

    @property
    def base_url(self):
        return self.server.http_url

    def sql(self, statements, wait_for=None, timeout_ms=WAIT_TIMEOUT_MS):
        """The list of results of `statements`; raises SqlError on a refusal."""
        req = {"sql": statements, "timeout_ms": timeout_ms}
        if wait_for:
            req["wait_for"] = wait_for
        status, body = http_request("POST", self.base_url + "/v1/sql", json.dumps(req),
                                    timeout_s=max(HTTP_TIMEOUT_S, timeout_ms / 1000 + 10))
        try:
            doc = json.loads(body)
        except ValueError:
            raise AssertionError(f"POST /v1/sql answered HTTP {status} with a body that is not JSON: {body[:500]!r}")
        if status == 200 and "error" not in doc:
            results = doc.get("results")
            if not isinstance(results, list):
                raise AssertionError(f"POST /v1/sql answered 200 without a results list: {body[:500]!r}")
            return results
        raise SqlError(status, doc.get("error"), doc.get("results"), body)

    def sql_one(self, statement, **kw):
        results = self.sql(statement, **kw)
        assert len(results) == 1, f"one statement, {len(results)} results: {results}"
        return results[0]

    def get_json(self, path):
        """(status, parsed JSON or None) of GET <path>."""
        status, body = http_request("GET", self.base_url + path)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def post_json(self, path, doc=None):
        status, body = http_request("POST", self.base_url + path, json.dumps(doc if doc is not None else {}))
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def topic_record_counts(self):
        """{topic: records} from /v1/status (sum over partitions of high
        watermark minus log start)."""
        status, doc = self.get_json("/v1/status")
        assert status == 200, f"/v1/status answered {status}"
        out = {}
        for t in doc.get("topics", []):
            out[t["name"]] = sum(p["high_watermark"] - p["log_start_offset"] for p in t["partitions"])
        return out


def wait_until(predicate, timeout_s, what, interval_s=0.05):
    """Polls `predicate` until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


class ViewsTestCase(EvertTestCase):
    """EvertTestCase with `self.client`, an SqlClient for its server."""

    def setUp(self):
        super().setUp()
        if self.server.http_port is None:
            raise ServerError("the server's listening line names no http port")
        self.client = SqlClient(self.server)
