"""Tables, materialized views and indexes over the HTTP API of docs/SQL.md,
driven by curl alone (and kcat for a view's changelog topic).

Every test starts its own server; each HTTP request is one curl process, so
what is checked is what any HTTP client sees: the status code, the content
type and the whole body. Expected view rows are computed here in Python from
the rows inserted.
"""

import json
import subprocess
import time
import unittest
import urllib.parse

from view_changelog import ChangelogFold, rows_by_key
from views_harness import EvertTestCase

CURL = "/usr/bin/curl"
KCAT = "/usr/bin/kcat"
REQUEST_TIMEOUT_S = 60
VIEW_LIVE_TIMEOUT_S = 20

# ---- the data most tests use ------------------------------------------------------

ORDERS_DDL = ("CREATE TABLE orders (id bigint, customer text, product bigint, qty int, price double precision) "
              "WITH (topic = 'orders', partitions = 3, format = 'json')")
ORDERS_COLUMNS = ["id", "customer", "product", "qty", "price"]
ORDERS_TYPES = ["bigint", "text", "bigint", "bigint", "double precision"]
# Prices are chosen so that every sum and average is exact in binary.
ORDERS = [
    (1, "alice", 10, 2, 2.5),
    (2, "bob", 10, 1, 4.0),
    (3, "alice", 11, 3, 1.5),
    (4, "carol smith", 12, 5, 10.0),
    (5, "bob", 12, 0, 99.0),  # qty 0: the view's WHERE drops it
    (6, "alice", 10, 1, 5.0),
    (7, "dave", 13, -1, 1.0),  # dropped too, so dave has no group
    (8, "bob", 13, 4, 0.25),
]
BY_CUSTOMER_DDL = ("CREATE MATERIALIZED VIEW by_customer AS SELECT customer, count(*) AS n, sum(qty) AS qty, "
                   "min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price, "
                   "count(DISTINCT product) AS products FROM orders WHERE qty > 0 GROUP BY customer")
BY_CUSTOMER_COLUMNS = ["customer", "n", "qty", "min_price", "max_price", "avg_price", "products"]
BY_CUSTOMER_TYPES = ["text", "bigint", "bigint", "double precision", "double precision", "double precision", "bigint"]


def by_customer(orders):
    """The rows of by_customer over `orders`, ordered by customer."""
    groups = {}
    for _id, customer, product, qty, price in orders:
        if qty > 0:
            groups.setdefault(customer, []).append((product, qty, price))
    return [[c, len(g), sum(q for _, q, _ in g), min(p for _, _, p in g), max(p for _, _, p in g),
             sum(p for _, _, p in g) / len(g), len({pr for pr, _, _ in g})]
            for c, g in sorted(groups.items())]


def sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def values_clause(rows):
    return ", ".join("(" + ", ".join(sql_literal(v) for v in r) + ")" for r in rows)


def insert_sql(table, rows, columns=None):
    cols = f" ({', '.join(columns)})" if columns else ""
    return f"INSERT INTO {table}{cols} VALUES {values_clause(rows)}"


class CurlViewsTest(EvertTestCase):

    # ---- curl ------------------------------------------------------------------------

    def curl(self, method, path, body=None):
        """(HTTP status, content type, body text) of one request made by curl."""
        args = [CURL, "-sS", "--globoff", "-X", method, "-w", "\n%{http_code} %{content_type}"]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        args.append(self.server.http_url + path)
        proc = subprocess.run(args, input=None if body is None else body.encode(), capture_output=True,
                              timeout=REQUEST_TIMEOUT_S)
        self.assertEqual(proc.returncode, 0, f"curl {method} {path} failed: {proc.stderr.decode(errors='replace')}")
        text, _, trailer = proc.stdout.decode().rpartition("\n")
        status, _, content_type = trailer.partition(" ")
        return int(status), content_type, text

    def get_json(self, path, expect_status=200):
        status, content_type, text = self.curl("GET", path)
        self.assertEqual(status, expect_status, f"GET {path}: {text}")
        self.assertTrue(content_type.startswith("application/json"), f"GET {path}: content type {content_type}")
        return json.loads(text)

    def post_sql(self, sql, expect_status=200, **fields):
        """The parsed body of POST /v1/sql {"sql": sql, **fields}."""
        status, content_type, text = self.curl("POST", "/v1/sql", json.dumps({"sql": sql, **fields}))
        self.assertEqual(status, expect_status, f"POST /v1/sql {sql[:300]!r}:\n{text[:3000]}")
        self.assertTrue(content_type.startswith("application/json"), f"content type {content_type}")
        doc = json.loads(text)
        if expect_status == 200:
            self.assertEqual(list(doc), ["results"], f"a 200 answer is only the results: {text[:3000]}")
        return doc

    def results(self, sql, **fields):
        return self.post_sql(sql, **fields)["results"]

    def select(self, sql, columns=None, types=None, command="SELECT", **fields):
        """Rows of one SELECT or SHOW (checking its columns and types when given)."""
        res = self.results(sql, **fields)
        self.assertEqual(len(res), 1, res)
        r = res[0]
        self.assertEqual(r["command"], command, r)
        self.assertEqual(sorted(r), ["columns", "command", "rows", "types"], r)
        if columns is not None:
            self.assertEqual(r["columns"], columns, sql)
        if types is not None:
            self.assertEqual(r["types"], types, sql)
        return r["rows"]

    def execute(self, sql, commands, **fields):
        """Runs statements that return no rows and checks each result's command."""
        res = self.results(sql, **fields)
        self.assertEqual([r.get("command") for r in res], commands, res)
        return res

    def view_status(self, name):
        return self.get_json(f"/v1/views/{name}")

    def view_row(self, view, key, columns):
        """The row of GET /v1/views/<view>?key=<key> (a str, or a list for a
        multi-column key), checking the whole body."""
        arg = key if isinstance(key, str) else json.dumps(key)
        body = self.get_json(f"/v1/views/{view}?key=" + urllib.parse.quote(arg, safe=""))
        self.assertEqual(sorted(body), ["columns", "object", "row", "view"], body)
        self.assertEqual((body["view"], body["columns"]), (view, columns), body)
        self.assertEqual(body["object"], dict(zip(columns, body["row"])), body)
        return body["row"]

    def assert_no_row(self, view, key):
        body = self.get_json(f"/v1/views/{view}?key=" + urllib.parse.quote(key, safe=""), expect_status=404)
        self.assertEqual(sorted(body), ["error"], body)
        self.assertEqual(body["error"]["code"], "no_data", body)
        self.assertIn(key, body["error"]["message"])

    def wait_live(self, name, timeout_s=VIEW_LIVE_TIMEOUT_S):
        """Polls the view's status until it is live; returns every state seen
        and the live status."""
        seen = []
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.view_status(name)
            if not seen or seen[-1] != st.get("state"):
                seen.append(st.get("state"))
            if st.get("state") == "live":
                return seen, st
            self.assertEqual(st.get("state"), "backfilling", st)
            self.assertTrue(0 <= st["progress"] < 100 and st["lag_records"] > 0, st)
            self.assertLess(time.monotonic(), deadline, f"view {name} not live after {timeout_s} s: {st}")
            time.sleep(0.05)

    # ---- checks ------------------------------------------------------------------------

    def check_insert(self, result, topic, n_rows, partitions):
        """An INSERT result: rows_affected and one offset per row, every one
        naming the table's topic and a partition of it, no offset twice."""
        self.assertEqual(sorted(result), ["command", "offsets", "rows_affected"], result)
        self.assertEqual(result["command"], "INSERT")
        self.assertEqual(result["rows_affected"], n_rows)
        offsets = result["offsets"]
        self.assertEqual(len(offsets), n_rows, result)
        for o in offsets:
            self.assertEqual(sorted(o), ["offset", "partition", "topic"], o)
            self.assertEqual(o["topic"], topic)
            self.assertIn(o["partition"], range(partitions))
            self.assertGreaterEqual(o["offset"], 0)
        self.assertEqual(len({(o["partition"], o["offset"]) for o in offsets}), n_rows, offsets)
        return offsets

    def create_orders(self, view=True):
        sql = ORDERS_DDL + (";\n" + BY_CUSTOMER_DDL if view else "")
        self.execute(sql, ["CREATE TABLE"] + (["CREATE MATERIALIZED VIEW"] if view else []))
        res = self.results(insert_sql("orders", ORDERS))
        return self.check_insert(res[0], "orders", len(ORDERS), 3)

    # ---- tests -------------------------------------------------------------------------

    def test_group_by_view_read_with_select_and_by_key(self):
        offsets = self.create_orders()
        expected = by_customer(ORDERS)
        rows = self.select("SELECT * FROM by_customer ORDER BY customer", BY_CUSTOMER_COLUMNS, BY_CUSTOMER_TYPES,
                           wait_for=offsets)
        self.assertEqual(rows, expected)
        self.assertEqual(rows, [
            ["alice", 3, 6, 1.5, 5.0, 3.0, 2],
            ["bob", 2, 5, 0.25, 4.0, 2.125, 2],
            ["carol smith", 1, 5, 10.0, 10.0, 10.0, 1],
        ])

        self.assertEqual(self.select("SELECT customer, n FROM by_customer ORDER BY n DESC, customer LIMIT 2",
                                     ["customer", "n"], ["text", "bigint"]),
                         [["alice", 3], ["bob", 2]])
        self.assertEqual(self.select("SELECT customer, n FROM by_customer ORDER BY customer DESC LIMIT 1"),
                         [["carol smith", 1]])
        # WHERE on the key, then on other columns.
        self.assertEqual(self.select("SELECT * FROM by_customer WHERE customer = 'bob'"), [expected[1]])
        self.assertEqual(self.select("SELECT * FROM by_customer WHERE customer = 'dave'"), [])
        self.assertEqual(self.select("SELECT customer, qty FROM by_customer WHERE qty >= 5 AND max_price < 10 "
                                     "ORDER BY customer"),
                         [["alice", 6], ["bob", 5]])
        self.assertEqual(self.select("SELECT customer FROM by_customer WHERE products = 2 AND avg_price > 2.5"),
                         [["alice"]])

        # By key over GET: a key with a space, URL-encoded.
        self.assertEqual(self.view_row("by_customer", "carol smith", BY_CUSTOMER_COLUMNS), expected[2])
        self.assertEqual(self.view_row("by_customer", "alice", BY_CUSTOMER_COLUMNS), expected[0])
        # dave's only order was filtered out; nobody never ordered.
        for key in ("dave", "nobody"):
            self.assert_no_row("by_customer", key)

    def test_view_status_and_server_status(self):
        offsets = self.create_orders()
        self.select("SELECT * FROM by_customer", wait_for=offsets)  # caught up with every insert
        _, st = self.wait_live("by_customer")
        self.assert_live_status(st, "by_customer", rows=3, events=len(ORDERS))
        # The position reached in each of the 3 partitions: all 8 records.
        self.assertEqual(sum(st["offsets"]), len(ORDERS), st)

        listing = self.get_json("/v1/views")
        self.assertEqual([v["name"] for v in listing["views"]], ["by_customer"])
        self.assertEqual(listing["views"][0], st)

        status = self.get_json("/v1/status")
        self.assertIn("views", status)
        self.assertEqual([v["name"] for v in status["views"]], ["by_customer"])
        self.assertEqual(status["views"][0]["state"], "live")
        # The view's changelog is a topic like any other.
        self.assertIn("_evert.view.by_customer", [t["name"] for t in status["topics"]])

        body = self.get_json("/v1/views/no_such_view", expect_status=404)
        self.assertIn("no_such_view", body["error"]["message"])

    def assert_live_status(self, st, name, rows, events, errors=0):
        """A view status (GET /v1/views/<name>) of a view that has caught up."""
        self.assertEqual(sorted(st), ["decoded_ahead", "errors", "events", "events_per_second",
                                      "events_since_start", "lag_ms", "lag_records", "name", "offsets",
                                      "progress", "recent_errors", "rows", "state", "summed_ahead"], st)
        # These views are far below --view-decode-ahead-records and
        # --view-partial-aggregation-records: every event on the view's
        # thread, applied to its group.
        self.assertEqual((st["decoded_ahead"], st["summed_ahead"]), (0, 0), st)
        self.assertEqual((st["name"], st["state"], st["progress"], st["rows"], st["events"]),
                         (name, "live", 100, rows, events), st)
        self.assertEqual((st["lag_records"], st["lag_ms"], st["errors"]), (0, 0, errors), st)
        if not errors:
            self.assertEqual(st["recent_errors"], [], st)

    def test_show_explain_and_index(self):
        offsets = self.create_orders()
        self.execute("CREATE INDEX orders_by_customer ON orders (customer)", ["CREATE INDEX"])

        want_bob = [list(o) for o in ORDERS if o[1] == "bob"]
        rows = self.select("SELECT * FROM orders WHERE customer = 'bob' ORDER BY id", ORDERS_COLUMNS, ORDERS_TYPES,
                           wait_for=offsets)
        self.assertEqual(rows, want_bob)

        self.assertEqual(self.select("SHOW TABLES", ["name", "topic", "partitions", "envelope", "key", "columns"],
                                     ["text", "text", "bigint", "text", "text", "text"], command="SHOW"),
                         [["orders", "orders", 3, "append", None,
                           "id bigint, customer text, product bigint, qty bigint, price double precision"]])
        views = self.select("SHOW VIEWS", ["name", "source", "state", "progress", "rows", "events",
                                           "events_per_second", "lag_records", "lag_ms", "errors", "last_error"],
                            command="SHOW")
        # events_per_second is a rate over about the last second: up to 8
        # when the view's first second ended just after the inserts (a slow
        # run), else 0.
        self.assertEqual(len(views), 1, views)
        self.assertTrue(0 <= views[0][6] <= len(ORDERS), views)
        views[0][6] = 0
        self.assertEqual(views, [["by_customer", "orders", "live", 100, 3, len(ORDERS), 0, 0, 0, 0, None]])
        self.assertEqual(self.select("SHOW INDEXES", ["name", "table", "column", "state", "entries"],
                                     ["text", "text", "text", "text", "bigint"], command="SHOW"),
                         [["orders_by_customer", "orders", "customer", "live", len(ORDERS)]])
        self.assertEqual(self.select("SELECT id, qty FROM orders WHERE customer = 'nobody'"), [])

        plan = self.explain("SELECT * FROM orders WHERE customer = 'bob'")
        self.assertIn("orders_by_customer", plan, "EXPLAIN of an equality on an indexed column names the index")
        plan = self.explain("SELECT * FROM orders WHERE qty = 1")
        self.assertNotIn("orders_by_customer", plan, "no index on qty")

        plan = self.explain(BY_CUSTOMER_DDL.replace("by_customer", "by_customer2"))
        for word in ("orders", "qty > 0", "customer", "count"):
            self.assertIn(word, plan, f"EXPLAIN CREATE MATERIALIZED VIEW shows the dataflow:\n{plan}")
        self.assertEqual([r[0] for r in self.select("SHOW VIEWS", command="SHOW")], ["by_customer"],
                         "EXPLAIN creates nothing")

        # Rows inserted after the index exist are found through it, in the
        # same request as the INSERT (read-your-writes).
        res = self.results("INSERT INTO orders VALUES (9, 'bob', 14, 1, 3.0), (10, 'erin', 10, 1, 1.0);"
                           "SELECT id, product FROM orders WHERE customer = 'bob' ORDER BY id")
        self.check_insert(res[0], "orders", 2, 3)
        self.assertEqual(res[1]["rows"], [[2, 10], [5, 12], [8, 13], [9, 14]])

    def explain(self, sql):
        """EXPLAIN's rows joined into one text."""
        res = self.results("EXPLAIN " + sql)
        self.assertEqual(len(res), 1, res)
        self.assertEqual(res[0]["command"], "EXPLAIN", res)
        self.assertGreater(len(res[0]["rows"]), 0, res)
        return "\n".join(" ".join(str(c) for c in r) for r in res[0]["rows"])

    def test_upsert_table_update_and_delete_reach_the_views(self):
        self.execute("CREATE TABLE users (id bigint, name text, city text, age int) "
                     "WITH (key = 'id', envelope = 'upsert', partitions = 2);"
                     "CREATE MATERIALIZED VIEW by_city AS SELECT city, count(*) AS n, sum(age) AS ages, "
                     "min(age) AS youngest FROM users GROUP BY city;"
                     "CREATE MATERIALIZED VIEW adults AS SELECT id, name, age FROM users WHERE age >= 18",
                     ["CREATE TABLE", "CREATE MATERIALIZED VIEW", "CREATE MATERIALIZED VIEW"])
        users = {1: ("ann", "Oslo", 31), 2: ("ben", "Rome", 17), 3: ("cid", "Oslo", 45), 4: ("dot", "Lima", 22)}
        res = self.results(insert_sql("users", [(k, *v) for k, v in users.items()]))
        offsets = self.check_insert(res[0], "users", 4, 2)

        def check(users, **fields):
            cities = {}
            for name, city, age in users.values():
                cities.setdefault(city, []).append(age)
            want_city = [[c, len(a), sum(a), min(a)] for c, a in sorted(cities.items())]
            want_adults = [[k, v[0], v[2]] for k, v in sorted(users.items()) if v[2] >= 18]
            res = self.results("SELECT * FROM by_city ORDER BY city; SELECT * FROM adults ORDER BY id", **fields)
            self.assertEqual(res[0]["columns"], ["city", "n", "ages", "youngest"])
            self.assertEqual(res[0]["rows"], want_city)
            self.assertEqual(res[1]["columns"], ["id", "name", "age"])
            self.assertEqual(res[1]["rows"], want_adults)

        check(users, wait_for=offsets)
        self.assertEqual(self.view_row("adults", "3", ["id", "name", "age"]), [3, "cid", 45])
        self.assert_no_row("adults", "2")  # ben is 17

        # INSERT of an existing key replaces the row.
        res = self.results("INSERT INTO users VALUES (2, 'ben', 'Rome', 18)")
        users[2] = ("ben", "Rome", 18)
        check(users, wait_for=self.check_insert(res[0], "users", 1, 2))
        self.assertEqual(self.view_row("adults", "2", ["id", "name", "age"]), [2, "ben", 18])

        # UPDATE moves ann to Rome; the update and the reads share a request.
        res = self.results("UPDATE users SET city = 'Rome', age = age + 1 WHERE id = 1;"
                           "SELECT * FROM by_city ORDER BY city")
        self.assertEqual(res[0]["command"], "UPDATE")
        self.assertEqual(res[0]["rows_affected"], 1)
        users[1] = ("ann", "Rome", 32)
        self.assertEqual(res[1]["rows"], [["Lima", 1, 22, 22], ["Oslo", 1, 45, 45], ["Rome", 2, 50, 18]])
        check(users, wait_for=res[0]["offsets"])  # adults, not read in that request, may still be applying it

        # An UPDATE that matches nothing writes nothing.
        res = self.results("UPDATE users SET age = 0 WHERE name = 'nobody'")
        self.assertEqual((res[0]["command"], res[0]["rows_affected"]), ("UPDATE", 0))

        # DELETE empties Lima: its group leaves the view.
        res = self.results("DELETE FROM users WHERE city = 'Lima' OR age < 19")
        self.assertEqual((res[0]["command"], res[0]["rows_affected"]), ("DELETE", 2))
        del users[4], users[2]
        check(users, wait_for=res[0]["offsets"])
        self.assert_no_row("by_city", "Lima")
        self.assertEqual(self.view_row("by_city", "Rome", ["city", "n", "ages", "youngest"]), ["Rome", 1, 32, 32])

        # UPDATE without WHERE touches every row.
        res = self.results("UPDATE users SET city = 'Bern'")
        self.assertEqual(res[0]["rows_affected"], 2)
        users = {k: (n, "Bern", a) for k, (n, _, a) in users.items()}
        check(users, wait_for=res[0]["offsets"])
        res = self.results("DELETE FROM users")
        self.assertEqual(res[0]["rows_affected"], 2)
        check({}, wait_for=res[0]["offsets"])

    def test_drop_index_view_and_table(self):
        offsets = self.create_orders()
        self.execute("CREATE INDEX orders_by_product ON orders (product);"
                     "CREATE MATERIALIZED VIEW big AS SELECT id, customer FROM orders WHERE price > 4",
                     ["CREATE INDEX", "CREATE MATERIALIZED VIEW"])
        self.assertEqual(self.select("SELECT id FROM orders WHERE product = 12 ORDER BY id", wait_for=offsets),
                         [[4], [5]])
        self.assertEqual(self.select("SELECT id, customer FROM big ORDER BY id", wait_for=offsets),
                         [[4, "carol smith"], [5, "bob"], [6, "alice"]])

        self.execute("DROP INDEX orders_by_product", ["DROP INDEX"])
        self.assertEqual(self.select("SHOW INDEXES", command="SHOW"), [])
        self.assertNotIn("orders_by_product", self.explain("SELECT * FROM orders WHERE product = 12"))
        # Without the index the same query still answers (by a scan).
        self.assertEqual(self.select("SELECT id FROM orders WHERE product = 12 ORDER BY id"), [[4], [5]])

        self.execute("DROP MATERIALIZED VIEW by_customer", ["DROP MATERIALIZED VIEW"])
        res = self.results("DROP VIEW big")  # the PostgreSQL spelling also drops a materialized view
        self.assertIn(res, ([{"command": "DROP VIEW"}], [{"command": "DROP MATERIALIZED VIEW"}]))
        self.assertEqual(self.select("SHOW VIEWS", command="SHOW"), [])
        self.get_json("/v1/views/by_customer", expect_status=404)
        self.get_json("/v1/views/by_customer?key=alice", expect_status=404)
        self.assertEqual(self.get_json("/v1/views")["views"], [])
        doc = self.post_sql("SELECT * FROM by_customer", expect_status=404)
        self.assertEqual(doc["error"]["code"], "42P01", doc)
        self.assertEqual(doc["results"], [])

        self.execute("DROP TABLE orders", ["DROP TABLE"])
        self.assertEqual(self.select("SHOW TABLES", command="SHOW"), [])
        doc = self.post_sql(insert_sql("orders", ORDERS[:1]), expect_status=404)
        self.assertEqual(doc["error"]["code"], "42P01", doc)
        # The names are free again.
        self.execute(ORDERS_DDL + ";" + BY_CUSTOMER_DDL, ["CREATE TABLE", "CREATE MATERIALIZED VIEW"])

    def test_stream_answers_ndjson(self):
        offsets = self.create_orders()
        rows = [(100 + i, f"c{i % 7}", i % 11, 1 + i % 3, 0.5 * (i % 9)) for i in range(2000)]
        res = self.results(insert_sql("orders", rows))
        offsets += self.check_insert(res[0], "orders", len(rows), 3)
        body = json.dumps({"sql": "SELECT * FROM by_customer ORDER BY customer; "
                                  "SELECT customer FROM by_customer WHERE customer = 'nobody';"
                                  "SELECT id, customer FROM orders WHERE id >= 100 ORDER BY id",
                           "stream": True, "wait_for": offsets})
        status, content_type, text = self.curl("POST", "/v1/sql", body)
        self.assertEqual(status, 200, text[:2000])
        self.assertTrue(content_type.startswith("application/x-ndjson"), content_type)
        self.assertTrue(text.endswith("\n"), "every NDJSON line ends with a newline")
        lines = [json.loads(line) for line in text[:-1].split("\n")]
        want_customers = by_customer(ORDERS + rows)
        want = ([{"command": "SELECT", "columns": BY_CUSTOMER_COLUMNS, "types": BY_CUSTOMER_TYPES}]
                + want_customers + [{"end": True, "rows": len(want_customers)}]
                + [{"command": "SELECT", "columns": ["customer"], "types": ["text"]}, {"end": True, "rows": 0}]
                + [{"command": "SELECT", "columns": ["id", "customer"], "types": ["bigint", "text"]}]
                + [[r[0], r[1]] for r in rows] + [{"end": True, "rows": len(rows)}])
        self.assertEqual(len(lines), len(want))
        self.assertEqual(lines, want)

    def test_statements_of_one_request_run_in_order_and_see_each_other(self):
        res = self.results(
            "CREATE TABLE t (k text, v bigint) WITH (partitions = 2);"
            "INSERT INTO t VALUES ('a', 1), ('b', 2), ('a', 3);"
            "CREATE MATERIALIZED VIEW s AS SELECT k, sum(v) AS total, count(*) AS n FROM t GROUP BY k;"
            "SELECT * FROM s ORDER BY k;"
            "INSERT INTO t (v, k) VALUES (10, 'b'), (NULL, 'c');"
            "SELECT * FROM s ORDER BY k;"
            "SELECT k, total FROM s WHERE n > 1 ORDER BY k")
        self.assertEqual([r["command"] for r in res],
                         ["CREATE TABLE", "INSERT", "CREATE MATERIALIZED VIEW", "SELECT", "INSERT", "SELECT",
                          "SELECT"])
        self.check_insert(res[1], "t", 3, 2)
        self.assertEqual(res[3]["rows"], [["a", 4, 2], ["b", 2, 1]])
        self.check_insert(res[4], "t", 2, 2)
        self.assertEqual(res[5]["rows"], [["a", 4, 2], ["b", 12, 2], ["c", None, 1]])
        self.assertEqual(res[6]["rows"], [["a", 4], ["b", 12]])

        # A failing statement stops the request; the ones before it are reported.
        doc = self.post_sql("INSERT INTO t VALUES ('d', 1); SELECT * FROM missing_view; INSERT INTO t VALUES ('e', 1)",
                            expect_status=404)
        self.assertEqual(doc["error"]["code"], "42P01")
        self.assertEqual(doc["error"]["statement"], 1)
        self.assertEqual(len(doc["results"]), 1)
        self.check_insert(doc["results"][0], "t", 1, 2)
        self.assertEqual(self.select("SELECT k FROM s WHERE k >= 'c' ORDER BY k",
                                     wait_for=doc["results"][0]["offsets"]), [["c"], ["d"]])

    def test_negative_number_literals(self):
        """Negative constants in INSERT, UPDATE, view expressions and WHERE
        (PostgreSQL's parser folds the sign into the constant)."""
        self.execute("CREATE TABLE nums (id bigint, v bigint, w double precision) "
                     "WITH (key = 'id', envelope = 'upsert', partitions = 1);"
                     "CREATE MATERIALIZED VIEW signs AS SELECT id, v, w, v > -4 AS above, -v AS neg FROM nums",
                     ["CREATE TABLE", "CREATE MATERIALIZED VIEW"])
        res = self.results("INSERT INTO nums VALUES (1, -100, -100), (2, 0 - 5, -2.5), (3, -3000000000, -(7)), "
                           "(4, -(7), 1), (5, 6, 1);"
                           "SELECT * FROM signs ORDER BY id")
        self.assertEqual(res[1]["rows"], [[1, -100, -100.0, False, 100], [2, -5, -2.5, False, 5],
                                          [3, -3000000000, -7.0, False, 3000000000], [4, -7, 1.0, False, 7],
                                          [5, 6, 1.0, True, -6]])
        res = self.results("UPDATE nums SET v = -3 WHERE id = 5; SELECT id, v, above FROM signs WHERE v < -4 OR id = 5 "
                           "ORDER BY id")
        self.assertEqual(res[1]["rows"], [[1, -100, False], [2, -5, False], [3, -3000000000, False],
                                          [4, -7, False], [5, -3, True]])

    def test_read_your_writes_with_wait_for(self):
        offsets = self.create_orders()
        self.assertEqual(self.select("SELECT * FROM by_customer ORDER BY customer", wait_for=offsets),
                         by_customer(ORDERS))
        orders = list(ORDERS)
        for i in range(30):
            row = (1000 + i, "zed", 20 + i % 4, 1 + i % 2, float(i))
            res = self.results(insert_sql("orders", [row]))
            offs = self.check_insert(res[0], "orders", 1, 3)
            orders.append(row)
            want = [r for r in by_customer(orders) if r[0] == "zed"]
            # Each read asks for the write just made: it must see it, every time.
            self.assertEqual(self.select("SELECT * FROM by_customer WHERE customer = 'zed'", wait_for=offs), want,
                             f"round {i}")

    def test_wait_for_an_offset_never_written_fails_with_57014_after_timeout_ms(self):
        offsets = self.create_orders()
        self.select("SELECT * FROM by_customer", wait_for=offsets)
        far = [{"topic": "orders", "partition": 0, "offset": 1_000_000}]
        t0 = time.monotonic()
        doc = self.post_sql("SELECT * FROM by_customer", expect_status=400, wait_for=far, timeout_ms=400)
        elapsed = time.monotonic() - t0
        self.assertEqual(doc["error"]["code"], "57014", doc)
        self.assertEqual(doc["error"]["statement"], 0, doc)
        self.assertEqual(doc["results"], [], doc)
        self.assertGreaterEqual(elapsed, 0.39, "answered before timeout_ms")
        self.assertLess(elapsed, 3.0, "timeout_ms (400) was not honoured")
        # Statements before the waiting one are done and reported.
        doc = self.post_sql("SHOW VIEWS; SELECT customer FROM by_customer", expect_status=400, wait_for=far,
                            timeout_ms=200)
        self.assertEqual(doc["error"]["code"], "57014", doc)
        self.assertEqual(doc["error"]["statement"], 1, doc)
        self.assertEqual(len(doc["results"]), 1, doc)
        # The server is fine afterwards.
        self.assertEqual(self.select("SELECT customer FROM by_customer ORDER BY customer"),
                         [["alice"], ["bob"], ["carol smith"]])

    def test_view_created_after_5000_rows_backfills_and_its_changelog_reads_with_kcat(self):
        self.execute("CREATE TABLE events (id bigint, grp text, v bigint, w double precision) "
                     "WITH (partitions = 4)", ["CREATE TABLE"])
        events = [(i, f"g{(i * 7) % 50:02d}", (i * 31) % 1000, (i % 8) / 4) for i in range(5000)]
        offsets = []
        for start in range(0, len(events), 2500):
            chunk = events[start:start + 2500]
            sql = ";".join(insert_sql("events", chunk[j:j + 500]) for j in range(0, len(chunk), 500))
            for r in self.results(sql):
                offsets += self.check_insert(r, "events", 500, 4)
        self.assertEqual(len(offsets), 5000)

        t0 = time.monotonic()
        self.execute("CREATE MATERIALIZED VIEW ev AS SELECT grp, count(*) AS n, sum(v) AS total, min(v) AS lo, "
                     "max(v) AS hi, sum(w) AS wsum FROM events WHERE v <> 0 GROUP BY grp",
                     ["CREATE MATERIALIZED VIEW"])
        self.assertLess(time.monotonic() - t0, 2.0, "CREATE MATERIALIZED VIEW returns at once")
        seen, st = self.wait_live("ev")
        self.assertIn(seen[0], ("backfilling", "live"), seen)
        self.assertEqual(seen[-1], "live", seen)
        self.assertLessEqual(len(seen), 2, f"states went {seen}")
        self.assert_live_status(st, "ev", rows=50, events=5000)

        groups = {}
        for _, g, v, w in events:
            if v != 0:
                groups.setdefault(g, []).append((v, w))
        want = [[g, len(x), sum(v for v, _ in x), min(v for v, _ in x), max(v for v, _ in x),
                 sum(w for _, w in x)] for g, x in sorted(groups.items())]
        cols = ["grp", "n", "total", "lo", "hi", "wsum"]
        rows = self.select("SELECT * FROM ev ORDER BY grp", cols, wait_for=offsets)
        self.assertEqual(len(rows), 50)
        self.assertEqual(rows, want)
        self.assertEqual(sum(r[1] for r in rows), sum(1 for e in events if e[2] != 0))

        # The changelog, read with kcat, folds to the same rows.
        want_state = rows_by_key(cols, rows, ["grp"])
        deadline = time.monotonic() + 10
        while True:
            fold = self.kcat_fold("_evert.view.ev")
            if fold.rows == want_state or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(fold.problems, [])
        self.assertGreaterEqual(fold.records, 50)
        self.assertEqual(fold.rows, want_state)

        # Later inserts reach the view and its changelog too.
        res = self.results("INSERT INTO events VALUES (5000, 'g00', 5, 0.5), (5001, 'new', 7, 1.0)")
        offs = self.check_insert(res[0], "events", 2, 4)
        rows = self.select("SELECT * FROM ev WHERE grp = 'g00' OR grp = 'new' ORDER BY grp", wait_for=offs)
        g00 = want[0]
        self.assertEqual(rows, [["g00", g00[1] + 1, g00[2] + 5, min(g00[3], 5), max(g00[4], 5), g00[5] + 0.5],
                                ["new", 1, 7, 7, 7, 1.0]])
        want_state.update(rows_by_key(cols, rows, ["grp"]))
        deadline = time.monotonic() + 10
        while True:
            fold = self.kcat_fold("_evert.view.ev")
            if fold.rows == want_state or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(fold.problems, [])
        self.assertEqual(fold.rows, want_state)
        self.assertEqual(fold.format_problems[:3], [], f"{len(fold.format_problems)} changelog records shaped "
                         "otherwise than docs/SQL.md says")

    def test_read_your_writes_through_views_three_deep(self):
        """A SELECT waits for the writes before it through every view between
        it and the table: t -> per_k (GROUP BY) -> per_n (over per_k's
        changelog) -> summary (over per_n's)."""
        self.execute("CREATE TABLE t (k text, v bigint) WITH (partitions = 2);"
                     "CREATE MATERIALIZED VIEW per_k AS SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k;"
                     "CREATE MATERIALIZED VIEW per_n AS SELECT n, count(*) AS ks, sum(s) AS s FROM per_k GROUP BY n;"
                     "CREATE MATERIALIZED VIEW summary AS SELECT count(*) AS ns, sum(ks) AS ks, max(n) AS maxn, "
                     "sum(s) AS s FROM per_n",
                     ["CREATE TABLE"] + ["CREATE MATERIALIZED VIEW"] * 3)
        rows = []
        for i in range(25):
            rows.append((f"k{(i * 7) % 5}", i - 8))
            res = self.results(insert_sql("t", rows[-1:]) + "; SELECT * FROM summary; SELECT * FROM per_n ORDER BY n")
            per_k = {}
            for k, v in rows:
                n, s = per_k.get(k, (0, 0))
                per_k[k] = (n + 1, s + v)
            per_n = {}
            for n, s in per_k.values():
                ks, total = per_n.get(n, (0, 0))
                per_n[n] = (ks + 1, total + s)
            self.assertEqual(res[2]["rows"], [[n, ks, total] for n, (ks, total) in sorted(per_n.items())],
                             f"round {i}: per_n (two views deep)")
            self.assertEqual(res[1]["rows"], [[len(per_n), len(per_k), max(per_n), sum(v for _, v in rows)]],
                             f"round {i}: summary (three views deep)")

    def test_changelog_keys_of_views_without_group_by(self):
        """docs/FORMATS.md: the key of a view without aggregates is [id] over
        an upsert table, [partition, offset] over an append table, and the
        source view's key for a view over such a view."""
        self.execute("CREATE TABLE users (id bigint, name text, age bigint) "
                     "WITH (key = 'id', envelope = 'upsert', partitions = 2);"
                     "CREATE TABLE visits (id bigint, page text) WITH (partitions = 3);"
                     "CREATE MATERIALIZED VIEW adults AS SELECT id, name FROM users WHERE age >= 18;"
                     "CREATE MATERIALIZED VIEW home AS SELECT id, page FROM visits WHERE page <> 'x';"
                     "CREATE MATERIALIZED VIEW home_odd AS SELECT id FROM home WHERE id % 2 = 1",
                     ["CREATE TABLE", "CREATE TABLE"] + ["CREATE MATERIALIZED VIEW"] * 3)
        res = self.results(insert_sql("users", [(1, "ann", 31), (2, "ben", 17), (3, "cid", 45), (4, "dot", 22)]) + ";"
                           "UPDATE users SET age = 18 WHERE id = 2; DELETE FROM users WHERE id = 3;"
                           "UPDATE users SET name = 'dorothy' WHERE id = 4")
        visits = [(i, "x" if i % 4 == 0 else f"p{i}") for i in range(12)]
        offsets = self.check_insert(self.results(insert_sql("visits", visits))[0], "visits", len(visits), 3)
        want_adults = {(1,): {"id": 1, "name": "ann"}, (2,): {"id": 2, "name": "ben"},
                       (4,): {"id": 4, "name": "dorothy"}}
        want_home = {(o["partition"], o["offset"]): {"id": i, "page": page}
                     for (i, page), o in zip(visits, offsets) if page != "x"}
        want_odd = {k: {"id": r["id"]} for k, r in want_home.items() if r["id"] % 2 == 1}
        # The folds below poll: a changelog is written a little after its view's rows are readable.
        self.results("SELECT * FROM home_odd; SELECT * FROM adults",
                     wait_for=offsets + [o for r in res for o in r.get("offsets", [])])
        for topic, want in (("adults", want_adults), ("home", want_home), ("home_odd", want_odd)):
            deadline = time.monotonic() + 10
            while True:
                fold = self.kcat_fold("_evert.view." + topic)
                if fold.rows == want or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(fold.problems, [], topic)
            self.assertEqual(fold.format_problems[:3], [], topic)
            self.assertEqual(fold.rows, want, f"changelog of {topic}, by key")

    def test_view_over_a_global_aggregate_sees_its_one_row(self):
        """A view with aggregates and no GROUP BY has one row from the start
        (count 0, sum NULL); its changelog publishes that row (before null),
        so a view over it counts it, and a fold of the changelog is the row
        even when no source row ever matched."""
        self.execute("CREATE TABLE t (v bigint);"
                     "CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(v) AS s FROM t;"
                     "CREATE MATERIALIZED VIEW none AS SELECT count(*) AS n FROM t WHERE v > 100;"
                     "CREATE MATERIALIZED VIEW over_total AS SELECT count(*) AS rows_in_total, sum(n) AS n FROM total",
                     ["CREATE TABLE"] + ["CREATE MATERIALIZED VIEW"] * 3)
        res = self.results("INSERT INTO t VALUES (1), (2); SELECT * FROM total; SELECT * FROM over_total;"
                           "INSERT INTO t VALUES (5); SELECT * FROM over_total; SELECT * FROM none")
        self.assertEqual(res[1]["rows"], [[2, 3]])
        self.assertEqual(res[2]["rows"], [[1, 2]], "over_total: the one row of total, counted once")
        self.assertEqual(res[4]["rows"], [[1, 3]])
        self.assertEqual(res[5]["rows"], [[0]])
        for topic, want in (("total", {(): {"n": 3, "s": 8}}), ("none", {(): {"n": 0}})):
            deadline = time.monotonic() + 5
            while True:
                fold = self.kcat_fold("_evert.view." + topic)
                if fold.rows == want or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(fold.problems, [], topic)
            self.assertEqual(fold.rows, want, f"changelog of {topic}")

    def test_rebuild_publishes_every_row_it_changes(self):
        """Regression (differential seed 1568330158): a rebuild sums the
        doubles partition by partition, in another order than the live view
        did, so a sum can come back an ulp different (within the rebuild's
        tolerance, not a "difference"). The changed row must still be
        published, or the next change's `before` is not the last `after`
        and a view over the changelog keeps the old value."""
        self.execute("CREATE TABLE t (g text, x double precision) WITH (partitions = 2);"
                     "CREATE MATERIALIZED VIEW s AS SELECT g, sum(x) AS sx FROM t GROUP BY g;"
                     "CREATE MATERIALIZED VIEW m AS SELECT max(sx) AS mx FROM s",
                     ["CREATE TABLE"] + ["CREATE MATERIALIZED VIEW"] * 2)
        high = {}

        def produce(partition, x):
            """One record into a chosen partition, then wait until s and m have it."""
            proc = subprocess.run([KCAT, "-b", self.server.bootstrap, "-P", "-t", "t", "-p", str(partition)],
                                  input=json.dumps({"g": "a", "x": x}).encode(), capture_output=True, timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace"))
            high[partition] = high.get(partition, -1) + 1
            return self.results("SELECT sx FROM s; SELECT mx FROM m",
                                wait_for=[{"topic": "t", "partition": p, "offset": o} for p, o in high.items()])

        # Live, in the order 0.1, 0.2, 2.2: (0.1 + 0.2) + 2.2 = 2.5; partition 0
        # first: (0.1 + 2.2) + 0.2 = 2.5000000000000004.
        produce(0, 0.1)
        produce(1, 0.2)
        res = produce(0, 2.2)
        self.assertEqual(res[0]["rows"], res[1]["rows"])
        status, _, text = self.curl("POST", "/v1/views/s/rebuild", "{}")
        self.assertEqual(status, 200, text)
        res = produce(0, -5.0)
        (sx,), (mx,) = res[0]["rows"][0], res[1]["rows"][0]
        self.assertTrue(abs(sx + 2.5) < 1e-9, res)
        self.assertEqual(mx, sx, "m is the max over the one row of s")
        deadline = time.monotonic() + 5
        while True:
            fold = self.kcat_fold("_evert.view.s")
            if fold.rows == {("a",): {"g": "a", "sx": sx}} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(fold.problems, [])
        self.assertEqual(fold.rows, {("a",): {"g": "a", "sx": sx}})

    def kcat_fold(self, topic):
        proc = subprocess.run([KCAT, "-b", self.server.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J",
                               "-q"], capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace"))
        fold = ChangelogFold()
        recs = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
        for r in sorted(recs, key=lambda r: (r["partition"], r["offset"])):
            fold.add(r.get("key"), r.get("payload"), f"{topic}/{r['partition']}@{r['offset']}")
        return fold


if __name__ == "__main__":
    unittest.main()
