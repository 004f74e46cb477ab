"""`evert sql` against a fake HTTP server that answers POST /v1/sql with
canned bodies (docs/SQL.md), until the real SQL API exists.

Checks what the CLI sends (one request per -c / -f / stdin script, in order)
and what it prints: psql-style tables and command tags on stdout, errors on
stderr, and the exit codes: 0 success, 1 the server reported an error,
2 no answer (unreachable, timeout) or bad arguments.

Run: EVERT_BIN=build/evert /usr/bin/python3 -m unittest -v sql_cli_test
(from tests/cli). No third-party modules.
"""

import http.server
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest

EVERT_BIN = os.environ.get("EVERT_BIN", "build/evert")
RUN_TIMEOUT_S = 30

SELECT_SQL = "SELECT customer, n, last_price FROM by_customer"
SELECT_ANSWER = {"results": [{
    "command": "SELECT", "columns": ["customer", "n", "last_price"], "types": ["text", "bigint", "double precision"],
    "rows": [["alice", 3, 1.5], ["bob", 12, None], [None, 1, None]]}]}
SELECT_OUT = (" customer | n  | last_price \n"
              "----------+----+------------\n"
              " alice    |  3 |        1.5\n"
              " bob      | 12 |           \n"
              "          |  1 |           \n"
              "(3 rows)\n\n")

INSERT_SQL = "INSERT INTO orders VALUES (1, 'alice'), (2, 'bob')"
INSERT_ANSWER = {"results": [{"command": "INSERT", "rows_affected": 2, "offsets": [
    {"topic": "orders", "partition": 0, "offset": 41}, {"topic": "orders", "partition": 3, "offset": 17}]}]}
INSERT_OUT = "INSERT 0 2\noffsets: orders/0@41 orders/3@17\n"

CREATE_SQL = "CREATE TABLE orders (id bigint, customer text) WITH (topic = 'orders')"
CREATE_ANSWER = {"results": [{"command": "CREATE TABLE"}]}

# A script whose second statement fails: the server answers 400 with the
# results of the statements done and the error, its position 1-based in the
# whole request.
BAD_SCRIPT = "CREATE TABLE orders (id bigint, customer text) WITH (topic = 'orders');\nSELECT * FRM orders;\n"
BAD_ANSWER = {"error": {"code": "42601", "message": 'syntax error at or near "FRM"',
                        "position": BAD_SCRIPT.index("FRM") + 1, "statement": 1},
              "results": [{"command": "CREATE TABLE"}]}
BAD_ERR = ('ERROR:  syntax error at or near "FRM"\n'
           "LINE 2: SELECT * FRM orders;\n"
           "                 ^\n"
           "SQLSTATE: 42601\n")


class FakeSqlServer:
    """Answers POST /v1/sql from `answers`: sql text -> (status, body, delay_s).
    A body that is a str is sent as text/plain; anything else as JSON."""

    def __init__(self):
        self.answers = {}
        self.requests = []  # (path, content type, parsed body)
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    request = json.loads(body)
                except ValueError:
                    request = None
                fake.requests.append((self.path, self.headers.get("Content-Type"), request))
                sql = request.get("sql") if isinstance(request, dict) else None
                status, answer, delay_s = fake.answers.get(sql, (
                    400, {"error": {"code": "XX000", "message": f"no canned answer for {sql!r}", "position": None},
                          "results": []}, 0))
                time.sleep(delay_s)
                raw = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that gave up mid-answer is part of the tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, sql, body, status=200, delay_s=0):
        self.answers[sql] = (status, body, delay_s)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def free_port():
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SqlCliTest(unittest.TestCase):

    def setUp(self):
        self.server = FakeSqlServer()
        self.addCleanup(self.server.stop)
        self.server.answer(SELECT_SQL, SELECT_ANSWER)
        self.server.answer(INSERT_SQL, INSERT_ANSWER)
        self.server.answer(CREATE_SQL, CREATE_ANSWER)
        self.server.answer(BAD_SCRIPT, BAD_ANSWER, status=400)

    def evert_sql(self, *args, stdin="", expect=0, server=True, env=None):
        env = dict(os.environ if env is None else env)
        if server:
            env.pop("EVERT_HTTP", None)
        argv = [EVERT_BIN, "sql", *(["--server", self.server.address] if server else []), *args]
        r = subprocess.run(argv, input=stdin.encode(), capture_output=True, timeout=RUN_TIMEOUT_S, env=env)
        out, err = r.stdout.decode(), r.stderr.decode()
        self.assertEqual(r.returncode, expect, f"{' '.join(argv)}\nstdout:\n{out}\nstderr:\n{err}")
        return out, err

    def sent(self):
        """The SQL of every request the server got, checking each one's shape."""
        for path, content_type, body in self.server.requests:
            self.assertEqual(path, "/v1/sql")
            self.assertEqual(content_type, "application/json")
            self.assertEqual(list(body), ["sql"])
        return [body["sql"] for _, _, body in self.server.requests]

    def script_file(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
        self.addCleanup(os.unlink, f.name)
        f.write(text)
        f.close()
        return f.name

    # ---------------------------------------------------------- results

    def test_select_prints_an_aligned_table(self):
        out, err = self.evert_sql("-c", SELECT_SQL)
        self.assertEqual(out, SELECT_OUT)
        self.assertEqual(err, "")
        self.assertEqual(self.sent(), [SELECT_SQL])

    def test_insert_prints_tag_and_offsets(self):
        out, _ = self.evert_sql("-c", INSERT_SQL)
        self.assertEqual(out, INSERT_OUT)

    def test_ddl_prints_its_tag(self):
        out, _ = self.evert_sql("-c", CREATE_SQL)
        self.assertEqual(out, "CREATE TABLE\n")

    def test_error_prints_results_done_then_error_with_position(self):
        out, err = self.evert_sql("-f", self.script_file(BAD_SCRIPT), expect=1)
        self.assertEqual(out, "CREATE TABLE\n")
        self.assertEqual(err, BAD_ERR)

    def test_json_prints_the_raw_body(self):
        out, _ = self.evert_sql("--json", "-c", INSERT_SQL)
        self.assertEqual(json.loads(out), INSERT_ANSWER)
        self.assertEqual(out, json.dumps(INSERT_ANSWER) + "\n")
        out, err = self.evert_sql("--json", "-f", "-", stdin=BAD_SCRIPT, expect=1)
        self.assertEqual(json.loads(out), BAD_ANSWER)
        self.assertEqual(err, "")

    # ---------------------------------------------------------- inputs

    def test_stdin_is_the_script_without_c_or_f(self):
        script = SELECT_SQL
        self.server.answer(script, SELECT_ANSWER)
        out, _ = self.evert_sql(stdin=script)
        self.assertEqual(out, SELECT_OUT)
        self.assertEqual(self.sent(), [script])

    def test_stdin_script_error_exits_1(self):
        out, err = self.evert_sql(stdin=BAD_SCRIPT, expect=1)
        self.assertEqual(out, "CREATE TABLE\n")
        self.assertEqual(err, BAD_ERR)
        self.assertEqual(self.sent(), [BAD_SCRIPT])

    def test_file_is_sent_whole_in_one_request(self):
        script = f"{CREATE_SQL};\n{INSERT_SQL};\n\n-- a comment\n{SELECT_SQL};\n"
        self.server.answer(script, {"results": CREATE_ANSWER["results"] + INSERT_ANSWER["results"] +
                                    SELECT_ANSWER["results"]})
        out, _ = self.evert_sql("-f", self.script_file(script))
        self.assertEqual(out, "CREATE TABLE\n" + INSERT_OUT + SELECT_OUT)
        self.assertEqual(self.sent(), [script])

    def test_file_dash_reads_stdin(self):
        out, _ = self.evert_sql("-f", "-", stdin=INSERT_SQL)
        self.assertEqual(out, INSERT_OUT)
        self.assertEqual(self.sent(), [INSERT_SQL])

    def test_each_c_and_f_is_one_request_in_command_line_order(self):
        out, _ = self.evert_sql("-c", CREATE_SQL, "-f", self.script_file(INSERT_SQL), "-c", SELECT_SQL)
        self.assertEqual(out, "CREATE TABLE\n" + INSERT_OUT + SELECT_OUT)
        self.assertEqual(self.sent(), [CREATE_SQL, INSERT_SQL, SELECT_SQL])

    def test_first_failing_request_ends_the_run(self):
        out, err = self.evert_sql("-c", INSERT_SQL, "-c", BAD_SCRIPT, "-c", SELECT_SQL, expect=1)
        self.assertEqual(out, INSERT_OUT + "CREATE TABLE\n")
        self.assertEqual(err, BAD_ERR)
        self.assertEqual(self.sent(), [INSERT_SQL, BAD_SCRIPT])

    def test_blank_script_sends_nothing(self):
        out, _ = self.evert_sql(stdin=" \n\t\n")
        self.assertEqual(out, "")
        self.assertEqual(self.sent(), [])

    def test_sql_is_json_escaped(self):
        sql = 'SELECT \'quote " backslash \\ tab\t\' AS "é"'
        self.server.answer(sql, {"results": [{"command": "SELECT", "columns": ["é"], "rows": [["x"]]}]})
        out, _ = self.evert_sql("-c", sql)
        self.assertEqual(out, " é \n---\n x\n(1 row)\n\n")
        self.assertEqual(self.sent(), [sql])

    # ---------------------------------------------------------- the server

    def test_evert_http_sets_the_default_server(self):
        out, _ = self.evert_sql("-c", CREATE_SQL, server=False, env=dict(os.environ, EVERT_HTTP=self.server.address))
        self.assertEqual(out, "CREATE TABLE\n")
        out, _ = self.evert_sql("-c", CREATE_SQL, server=False,
                                env=dict(os.environ, EVERT_HTTP=f"http://{self.server.address}/"))
        self.assertEqual(out, "CREATE TABLE\n")

    def test_unreachable_server_exits_2(self):
        address = f"127.0.0.1:{free_port()}"
        _, err = self.evert_sql("--server", address, "-c", SELECT_SQL, server=False, expect=2)
        self.assertEqual(err, f"evert sql: cannot connect to {address}: Connection refused\n")

    def test_silent_server_times_out_with_exit_2(self):
        self.server.answer(SELECT_SQL, SELECT_ANSWER, delay_s=5)
        start = time.monotonic()
        _, err = self.evert_sql("--timeout-ms", "300", "-c", SELECT_SQL, expect=2)
        self.assertLess(time.monotonic() - start, 4)
        self.assertEqual(err, f"evert sql: no answer from {self.server.address} within 300 ms\n")

    def test_answer_that_is_not_json_exits_1(self):
        self.server.answer(SELECT_SQL, "Bad Gateway", status=502)
        out, err = self.evert_sql("-c", SELECT_SQL, expect=1)
        self.assertEqual(out, "")
        self.assertIn("HTTP 502", err)
        self.assertIn("Bad Gateway", err)

    def test_bad_arguments_exit_2(self):
        _, err = self.evert_sql("--server", "nocolon", "-c", SELECT_SQL, server=False, expect=2)
        self.assertIn("expected HOST:PORT", err)
        _, err = self.evert_sql("-f", "/nonexistent/script.sql", expect=2)
        self.assertIn("cannot open /nonexistent/script.sql", err)
        self.assertEqual(self.sent(), [])


if __name__ == "__main__":
    unittest.main()
