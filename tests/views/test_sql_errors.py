"""Refused SQL over HTTP: the SQLSTATE, HTTP status and position of each
error in docs/SQL.md, and a server that keeps serving afterwards.

The codes are PostgreSQL's (the statements below give the same codes in
PostgreSQL 15), except 0A000 for UPDATE/DELETE on an append table, which is
evert's own refusal.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from views_harness import SqlError, ViewsTestCase, http_request  # noqa: E402

SETUP = [
    "CREATE TABLE ev (id bigint, g text, k bigint, v bigint, x double precision, b boolean) "
    "WITH (topic = 'ev', partitions = 2)",
    "CREATE TABLE up (id bigint, g text, v bigint) WITH (topic = 'up', key = 'id', envelope = 'upsert')",
    "CREATE MATERIALIZED VIEW ev_n AS SELECT count(*) AS n FROM ev",
]


class SqlErrorTestCase(ViewsTestCase):

    def setUp(self):
        super().setUp()
        for statement in SETUP:
            self.client.sql_one(statement)
        self.rows_written = 0

    def refused(self, statement, code, http_status=400, **kw):
        """Sends `statement`, expects the refusal, returns the SqlError."""
        with self.assertRaises(SqlError, msg=f"{statement!r} was accepted") as cm:
            self.client.sql(statement, **kw)
        e = cm.exception
        self.assertEqual(e.code, code, f"{statement!r}: SQLSTATE {e.code} ({e.message}), expected {code}")
        self.assertEqual(e.http_status, http_status, f"{statement!r} ({code}): HTTP {e.http_status}")
        self.assertIsInstance(e.message, str, f"{statement!r}: error without a message: {e.body!r}")
        self.assertTrue(e.message, f"{statement!r}: empty message")
        return e

    def assert_serving(self):
        """The server is up and still answers reads and writes."""
        self.assertTrue(self.server.running(), "the server exited")
        result = self.client.sql_one("INSERT INTO ev (id, v) VALUES (1, 2)")
        self.assertEqual(result.get("rows_affected"), 1, result)
        self.rows_written += 1
        # The SELECT waits for the INSERT of its own request by itself; the
        # one of the request before (maybe in the other partition) it must be
        # told about.
        result = self.client.sql("INSERT INTO ev (id) VALUES (3); SELECT n FROM ev_n",
                                 wait_for=result["offsets"])[1]
        self.rows_written += 1
        self.assertEqual(result.get("rows"), [[self.rows_written]], result)
        status, _ = http_request("GET", self.client.base_url + "/v1/status")
        self.assertEqual(status, 200)


class SyntaxErrorTest(SqlErrorTestCase):

    def test_syntax_error_positions(self):
        e = self.refused("SELEC * FROM ev", "42601")
        self.assertEqual(e.position, 1, e)
        self.assertEqual(e.statement, 0, e)

        statement = "SELECT id FROM ev WHERE AND v > 3"
        e = self.refused(statement, "42601")
        self.assertEqual(e.position, statement.index("AND") + 1, e)

        statement = "SELECT * FROM ev WHERE v >"
        e = self.refused(statement, "42601")  # at end of input
        self.assertIsInstance(e.position, int, e)
        self.assertGreaterEqual(e.position, len(statement) - 1, e)
        self.assertLessEqual(e.position, len(statement) + 1, e)
        self.assert_serving()

    def test_position_counts_characters_not_bytes(self):
        statement = "SELECT * FROM ev WHERE g = 'h\u00e9\u00e9\u00e9' AND AND v > 0"
        e = self.refused(statement, "42601")
        self.assertEqual(e.position, statement.index("AND AND") + 5,
                         f"position {e.position}: expected the character position "
                         f"{statement.index('AND AND') + 5} (the byte position would be "
                         f"{len(statement[:statement.index('AND AND') + 4].encode()) + 1})")
        # Four-byte UTF-8 (two UTF-16 units): still one character each.
        statement = "SELECT * FROM ev WHERE g = '\U0001F600\u00e9\U0001F680' OR OR v > 0"
        e = self.refused(statement, "42601")
        self.assertEqual(e.position, statement.index("OR OR") + 4, e)

    def test_syntax_error_in_a_later_statement(self):
        # The parser reads the whole request first, so nothing runs.
        statement = "INSERT INTO ev (id) VALUES (1); SELECT * FRM ev"
        e = self.refused(statement, "42601")
        self.assertIsInstance(e.position, int, e)
        whole = statement.index("FRM") + 1
        own = statement.index("FRM") - statement.index("SELECT") + 1
        self.assertIn(e.position, (whole, own), f"position {e.position}: expected {whole} (in the request) "
                                                f"or {own} (in the statement)")
        self.assertEqual(self.client.sql_one("SELECT n FROM ev_n").get("rows"), [[0]],
                         "a request with a syntax error wrote rows")
        self.assert_serving()

    def test_insert_with_more_values_than_columns(self):
        self.refused("INSERT INTO ev (id) VALUES (1, 2)", "42601")
        self.assert_serving()


class NameErrorTest(SqlErrorTestCase):

    def test_unknown_table(self):
        self.refused("SELECT * FROM nope", "42P01", 404)
        self.refused("INSERT INTO nope VALUES (1)", "42P01", 404)
        self.refused("CREATE MATERIALIZED VIEW bad AS SELECT count(*) AS n FROM nope", "42P01", 404)
        self.refused("DROP TABLE nope", "42P01", 404)
        self.refused("DROP MATERIALIZED VIEW nope", "42P01", 404)
        self.assert_not_listed("bad")
        self.assert_serving()

    def test_unknown_column(self):
        self.refused("SELECT nope FROM ev_n", "42703")
        self.refused("INSERT INTO ev (id, nope) VALUES (1, 2)", "42703")
        self.refused("UPDATE up SET nope = 1 WHERE id = 1", "42703")
        self.refused("DELETE FROM up WHERE nope = 1", "42703")
        self.refused("CREATE MATERIALIZED VIEW bad AS SELECT g, count(nope) AS n FROM ev GROUP BY g", "42703")
        self.refused("CREATE MATERIALIZED VIEW bad AS SELECT id FROM ev WHERE nope > 1", "42703")
        self.assert_not_listed("bad")
        self.assert_serving()

    def test_duplicate_relation(self):
        self.refused("CREATE TABLE ev (id bigint)", "42P07", 409)
        self.refused("CREATE MATERIALIZED VIEW ev_n AS SELECT count(*) AS n FROM up", "42P07", 409)
        self.refused("CREATE TABLE ev_n (id bigint)", "42P07", 409)
        # The original view is untouched.
        self.assertEqual(self.client.sql_one("SELECT n FROM ev_n").get("rows"), [[0]])
        self.assert_serving()

    def assert_not_listed(self, name):
        result = self.client.sql_one("SHOW VIEWS")
        self.assertNotIn(name, json.dumps(result.get("rows")), f"a refused CREATE left view {name} behind")


class SemanticErrorTest(SqlErrorTestCase):

    def test_update_and_delete_on_append_table(self):
        self.refused("UPDATE ev SET v = 1 WHERE id = 1", "0A000")
        self.refused("UPDATE ev SET v = 1", "0A000")
        self.refused("DELETE FROM ev WHERE id = 1", "0A000")
        self.assert_serving()

    def test_ungrouped_column_in_aggregate_view(self):
        e = self.refused("CREATE MATERIALIZED VIEW bad AS SELECT g, v, count(*) AS n FROM ev GROUP BY g", "42803")
        self.assertRegex(e.message, r"\bv\b", "the message should name the column")
        self.refused("CREATE MATERIALIZED VIEW bad AS SELECT id, count(*) AS n FROM ev", "42803")
        self.assert_serving()

    def test_bad_literal_for_typed_column(self):
        self.refused("INSERT INTO ev (id) VALUES ('abc')", "22P02")
        self.refused("INSERT INTO ev (b) VALUES ('maybe')", "22P02")
        self.refused("INSERT INTO ev (x) VALUES ('abc')", "22P02")
        self.refused("INSERT INTO ev (id, v) VALUES (1, 2), (3, 'four')", "22P02")
        # A refused multi-row INSERT writes none of its rows.
        self.assertEqual(self.client.sql_one("SELECT n FROM ev_n").get("rows"), [[0]],
                         "a refused INSERT wrote some of its rows")
        self.assert_serving()

    def test_error_reports_statement_and_earlier_results(self):
        with self.assertRaises(SqlError) as cm:
            self.client.sql("INSERT INTO ev (id) VALUES (10), (11); SELECT * FROM nope; INSERT INTO ev (id) VALUES (12)")
        e = cm.exception
        self.assertEqual(e.code, "42P01", e)
        self.assertEqual(e.statement, 1, f"statement index {e.statement}: expected 1 (0-based) for the 2nd statement")
        self.assertIsInstance(e.results, list, e.body)
        self.assertEqual(len(e.results), 1, f"results of the statements done: {e.results}")
        self.assertEqual(e.results[0].get("command"), "INSERT", e.results)
        self.assertEqual(e.results[0].get("rows_affected"), 2, e.results)
        # The first statement's rows were written; the third never ran.
        self.assertEqual(self.client.sql_one("SELECT n FROM ev_n", wait_for=e.results[0]["offsets"]).get("rows"),
                         [[2]])
        self.rows_written = 2
        self.assert_serving()

    def test_wait_for_timeout(self):
        started = time.monotonic()
        self.refused("SELECT n FROM ev_n", "57014",
                     wait_for=[{"topic": "ev", "partition": 0, "offset": 1000000}], timeout_ms=300)
        self.assertLess(time.monotonic() - started, 10, "the wait ignored timeout_ms")
        self.assert_serving()


class HttpRequestErrorTest(SqlErrorTestCase):

    def post_raw(self, body, content_type="application/json"):
        return http_request("POST", self.client.base_url + "/v1/sql", body, content_type=content_type)

    def test_bodies_that_are_not_sql_requests(self):
        bodies = [b"this is not json", b"", b"{\"sql\": ", b"[]", b"\"SELECT 1\"", b"{}", b"{\"query\": \"SELECT n FROM ev_n\"}",
                  b"{\"sql\": 5}", b"{\"sql\": null}", b"{\"sql\": [\"SELECT n FROM ev_n\"]}", b"\xff\xfe{\"sql\"}"]
        for body in bodies:
            with self.subTest(body=body):
                status, reply = self.post_raw(body)
                self.assertEqual(status, 400, f"{body!r}: HTTP {status} {reply[:300]!r}")
                try:
                    doc = json.loads(reply)
                except ValueError:
                    self.fail(f"{body!r}: the 400 body is not JSON: {reply[:300]!r}")
                self.assertIsInstance(doc.get("error"), dict, f"{body!r}: {doc}")
        self.assert_serving()

    def test_unknown_view_routes(self):
        status, _ = self.client.get_json("/v1/views/nope")
        self.assertEqual(status, 404)
        status, _ = self.client.post_json("/v1/views/nope/rebuild")
        self.assertEqual(status, 404)
        status, _ = self.client.get_json("/v1/views/ev_n")
        self.assertEqual(status, 200)
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
