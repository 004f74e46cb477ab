"""`evert sql` against a real server: a script from a file and from stdin,
-c statements, psql-style tables, write offsets, and SQLSTATE errors."""

import os
import subprocess
import tempfile
import unittest

from views_harness import ViewsTestCase
from evert_server import EVERT_BIN


class EvertSqlTest(ViewsTestCase):
    def evert_sql(self, *args, stdin=None):
        return subprocess.run([EVERT_BIN, "sql", "--server", f"127.0.0.1:{self.server.http_port}", *args],
                              input=stdin, capture_output=True, text=True, timeout=60)

    def test_script_file_then_queries(self):
        script = (
            "CREATE TABLE orders (id bigint, customer text, qty int) "
            "WITH (partitions = 2, key = 'id', envelope = 'upsert');\n"
            "INSERT INTO orders VALUES (1, 'alice', 2), (2, 'bob', 5), (3, 'alice', 1);\n"
            "CREATE MATERIALIZED VIEW by_customer AS SELECT customer, count(*) AS n, sum(qty) AS qty "
            "FROM orders GROUP BY customer;\n"
            "UPDATE orders SET qty = 10 WHERE id = 3;\n"
            "SELECT * FROM by_customer ORDER BY customer;\n")
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(script)
            path = f.name
        try:
            r = self.evert_sql("-f", path)
        finally:
            os.unlink(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("CREATE TABLE", out)
        self.assertIn("INSERT 0 3", out)
        self.assertIn("CREATE MATERIALIZED VIEW", out)
        self.assertIn("UPDATE 1", out)
        lines = [l.rstrip() for l in out.splitlines()]
        header = next(i for i, l in enumerate(lines) if l.replace(" ", "") == "customer|n|qty")
        rows = [[c.strip() for c in l.split("|")] for l in lines[header + 2:header + 4]]
        self.assertEqual(rows, [["alice", "2", "12"], ["bob", "1", "5"]])
        self.assertIn("(2 rows)", out)
        self.assertRegex(out, r"offsets: orders/\d@\d+")

    def test_stdin_and_c(self):
        r = self.evert_sql(stdin="CREATE TABLE t (id bigint, v text) WITH (key = 'id', envelope = 'upsert');"
                                 "INSERT INTO t VALUES (7, 'seven');")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.evert_sql("-c", "SELECT v FROM t WHERE id = 7", "-c", "SHOW TABLES")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("seven", r.stdout)
        self.assertIn("(1 row)", r.stdout)
        self.assertIn("upsert", r.stdout)

    def test_errors_carry_sqlstate_and_position(self):
        r = self.evert_sql("-c", "SELECT nope FROM missing_table")
        self.assertEqual(r.returncode, 1)
        self.assertIn('relation "missing_table" does not exist', r.stderr)
        self.assertIn("42P01", r.stderr)
        r = self.evert_sql("-c", "SELEC 1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("42601", r.stderr)
        self.assertIn("^", r.stderr)  # the caret under the position


if __name__ == "__main__":
    unittest.main()
