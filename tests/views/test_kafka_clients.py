"""Views fed by Kafka clients we did not write, and a view's changelog read
by one.

KafkaJS 2.2.4 (node) produces JSON rows into an append table's topic over
four partitions, plain and gzip batches, a few of them malformed; the
confluent-kafka Python client (librdkafka) produces into an upsert table's
topic with updates and tombstones (record key = str(id)), while a
confluent-kafka consumer follows the view's changelog topic. Every expected
row is computed here in Python from what was produced.
"""

import datetime
import json
import random
import time
import unittest
import urllib.parse

from view_changelog import ChangelogFold, rows_by_key
from views_harness import ViewsTestCase

import confluent_kafka  # noqa: E402  (after views_harness: it puts tests/integration on sys.path)
import kafka_clients as kc  # noqa: E402

CATCH_UP_TIMEOUT_S = 15
KINDS = ["view", "click", "buy", "share", "like"]
REGIONS = ["north", "south", "east"]
TS_BASE_S = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def ts_text(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def last_offsets(topic, delivered):
    """wait_for entries: the last offset written to each partition."""
    last = {}
    for p, off in delivered:
        last[p] = max(off, last.get(p, -1))
    return [{"topic": topic, "partition": p, "offset": off} for p, off in sorted(last.items())]


def clicks(n, partitions):
    """(messages for kafkajs_produce.js, well-formed rows, malformed count)."""
    msgs, rows, malformed = [], [], 0
    for i in range(n):
        row = {"id": i, "user_id": f"u{(i * 13) % 41}", "kind": KINDS[(i * 3) % 5], "region": REGIONS[i % 3],
               "amount": None if i % 17 == 5 else (i * 37) % 500 - 50}
        sec = TS_BASE_S + (i * 7919) % 86400
        # A timestamp is an ISO-8601 string or epoch milliseconds.
        row["ts"] = (datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                     if i % 2 else sec * 1000)
        if i % 11 == 0:
            row["note"] = {"extra": "fields are ignored", "i": i}
        value = json.dumps(row).encode()
        if i % 97 == 13:  # a column absent
            del row["kind"]
            value, row = json.dumps(row).encode(), None
        elif i % 97 == 50:  # a column of the wrong JSON type
            row["amount"] = "12"
            value, row = json.dumps(row).encode(), None
        elif i % 97 == 80:  # not JSON at all
            value, row = b"{not json", None
        if row is None:
            malformed += 1
        else:
            row["ts_s"] = sec
            rows.append(row)
        msgs.append({"p": i % partitions, "k": kc.b64(str(i).encode()), "v": kc.b64(value), "h": [],
                     "ts": (TS_BASE_S + i) * 1000})
    return msgs, rows, malformed


def accounts_ops(n, ids, seed):
    """Upserts and tombstones over `ids`: [(id, row or None)] and the final
    {id: row}."""
    rng = random.Random(seed)
    ops, state = [], {}
    for _ in range(n):
        k = rng.randrange(ids)
        if rng.random() < 0.15:
            ops.append((k, None))  # a tombstone, also for ids that never existed
            state.pop(k, None)
            continue
        row = {"id": k, "owner": f"owner-{rng.randrange(40)}",
               "region": None if rng.random() < 0.03 else rng.choice(REGIONS),
               "balance": None if rng.random() < 0.05 else rng.randrange(-200, 1000)}
        ops.append((k, row))
        state[k] = row
    return ops, state


def by_region(state):
    groups = {}
    for row in state.values():
        groups.setdefault(row["region"], []).append(row)
    out = []
    for region, rs in groups.items():
        bal = [r["balance"] for r in rs if r["balance"] is not None]
        out.append([region, len(rs), len(bal), sum(bal) if bal else None, min(bal, default=None),
                    max(bal, default=None), len({r["owner"] for r in rs})])
    return out


BY_REGION_COLUMNS = ["region", "n", "n_balance", "total", "lo", "hi", "owners"]


def solvent(state):
    return [[k, r["owner"], r["balance"]] for k, r in sorted(state.items())
            if r["balance"] is not None and r["balance"] >= 0]


class KafkaClientViewsTest(ViewsTestCase):

    def select(self, sql, **kw):
        res = self.client.sql(sql, **kw)
        self.assertEqual(len(res), 1, res)
        self.assertEqual(res[0]["command"], "SELECT", res)
        return res[0]["columns"], res[0]["rows"]

    def view_status(self, name):
        status, doc = self.client.get_json(f"/v1/views/{name}")
        self.assertEqual(status, 200, doc)
        return doc

    def test_kafkajs_rows_into_an_append_table(self):
        partitions = 4
        self.client.sql(
            f"CREATE TABLE clicks (id bigint, user_id text, kind text, region text, amount bigint, ts timestamp) "
            f"WITH (topic = 'clicks', partitions = {partitions}, format = 'json');"
            "CREATE MATERIALIZED VIEW clicks_by_kind AS SELECT kind, count(*) AS n, count(amount) AS priced, "
            "sum(amount) AS total, min(amount) AS lo, max(amount) AS hi, count(DISTINCT user_id) AS users "
            "FROM clicks WHERE id % 10 <> 3 GROUP BY kind")
        msgs, rows, malformed = clicks(3000, partitions)
        self.assertEqual(malformed, 93)
        path = self.scratch_path("clicks.json")
        with open(path, "w") as f:
            json.dump({"topic": "clicks", "chunk": 1000, "acks": -1, "messages": msgs}, f)
        delivered = [tuple(x) for x in kc.kafkajs_run("kafkajs_produce.js", [self.bootstrap, path])]
        self.assertEqual(sorted(delivered), sorted((p, o) for p in range(partitions) for o in range(750)))
        wait_for = last_offsets("clicks", delivered)

        # A second view, created after the data is in (it backfills), keyed
        # by two columns.
        self.client.sql("CREATE MATERIALIZED VIEW clicks_by_kind_region AS SELECT kind, region, count(*) AS n, "
                        "min(ts) AS first_ts, max(ts) AS last_ts FROM clicks GROUP BY kind, region")

        groups = {}
        for r in rows:
            if r["id"] % 10 != 3:
                groups.setdefault(r["kind"], []).append(r)
        want = []
        for kind, rs in sorted(groups.items()):
            amounts = [r["amount"] for r in rs if r["amount"] is not None]
            want.append([kind, len(rs), len(amounts), sum(amounts), min(amounts), max(amounts),
                         len({r["user_id"] for r in rs})])
        cols, got = self.select("SELECT * FROM clicks_by_kind ORDER BY kind", wait_for=wait_for)
        self.assertEqual(cols, ["kind", "n", "priced", "total", "lo", "hi", "users"])
        self.assertEqual(got, want)

        pairs = {}
        for r in rows:
            pairs.setdefault((r["kind"], r["region"]), []).append(r["ts_s"])
        want2 = [[k, reg, len(ts), ts_text(min(ts)), ts_text(max(ts))] for (k, reg), ts in sorted(pairs.items())]
        cols, got = self.select("SELECT * FROM clicks_by_kind_region ORDER BY kind, region", wait_for=wait_for)
        self.assertEqual(cols, ["kind", "region", "n", "first_ts", "last_ts"])
        self.assertEqual(got, want2)
        self.assertEqual(sum(r[2] for r in got), len(rows))

        # By a two-column key over GET.
        key = urllib.parse.quote(json.dumps(["buy", "south"]), safe="")
        status, doc = self.client.get_json(f"/v1/views/clicks_by_kind_region?key={key}")
        row = next(r for r in want2 if r[:2] == ["buy", "south"])
        self.assertEqual((status, doc), (200, {"view": "clicks_by_kind_region", "columns": cols, "row": row,
                                               "object": dict(zip(cols, row))}))

        # The malformed events were counted, not fatal, by both views.
        for name in ("clicks_by_kind", "clicks_by_kind_region"):
            st = self.view_status(name)
            self.assertEqual(st["state"], "live", st)
            self.assertEqual(st["errors"], malformed, st)

    def test_confluent_upserts_and_tombstones_and_a_changelog_follower(self):
        self.client.sql(
            "CREATE TABLE accounts (id bigint, owner text, region text, balance bigint) "
            "WITH (topic = 'accounts', partitions = 3, key = 'id', envelope = 'upsert', format = 'json');"
            "CREATE MATERIALIZED VIEW accounts_by_region AS SELECT region, count(*) AS n, count(balance) AS n_balance, "
            "sum(balance) AS total, min(balance) AS lo, max(balance) AS hi, count(DISTINCT owner) AS owners "
            "FROM accounts GROUP BY region;"
            "CREATE MATERIALIZED VIEW solvent AS SELECT id, owner, balance FROM accounts WHERE balance >= 0")
        ops, state = accounts_ops(3000, 300, seed=11)

        followers = {name: self.follow(f"_evert.view.{name}") for name in ("accounts_by_region", "solvent")}
        producer = confluent_kafka.Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 5,
                                             # Java's partitioner, which INSERT uses too (docs/SQL.md)
                                             "partitioner": "murmur2_random"})
        delivered, errors = [], []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)
            else:
                delivered.append((msg.partition(), msg.offset()))

        for round_no in range(3):
            for k, row in ops[round_no * 1000:(round_no + 1) * 1000]:
                producer.produce("accounts", key=str(k).encode(),
                                 value=None if row is None else json.dumps(row).encode(), on_delivery=on_delivery)
            self.assertEqual(producer.flush(30), 0)
            for consumer, fold in followers.values():
                self.drain(consumer, fold, 0.3)  # following the changelog while it is written
        self.assertEqual(errors, [])
        self.assertEqual(len(delivered), len(ops))
        wait_for = last_offsets("accounts", delivered)

        cols, got = self.select("SELECT * FROM accounts_by_region", wait_for=wait_for)
        self.assertEqual(cols, BY_REGION_COLUMNS)
        none_last = lambda r: (r[0] is None, r[0] or "")  # noqa: E731
        self.assertEqual(sorted(got, key=none_last), sorted(by_region(state), key=none_last))
        cols, got = self.select("SELECT * FROM solvent ORDER BY id", wait_for=wait_for)
        self.assertEqual(cols, ["id", "owner", "balance"])
        self.assertEqual(got, solvent(state))
        some = next(iter(sorted(k for k, r in state.items() if r["balance"] is not None and r["balance"] >= 0)))
        status, doc = self.client.get_json(f"/v1/views/solvent?key={some}")
        row = [some, state[some]["owner"], state[some]["balance"]]
        self.assertEqual((status, doc), (200, {"view": "solvent", "columns": cols, "row": row,
                                               "object": dict(zip(cols, row))}))
        gone = next(k for k in range(300) if k not in state)
        self.assertEqual(self.client.get_json(f"/v1/views/solvent?key={gone}")[0], 404)

        # SQL writes land in the same partitions as the client's (murmur2 of
        # the record key), so they order after the Kafka writes of each key.
        res = self.client.sql("UPDATE accounts SET balance = balance - 500 WHERE region = 'north';"
                              f"DELETE FROM accounts WHERE id = {some};"
                              "SELECT * FROM solvent ORDER BY id", wait_for=wait_for)
        north = [k for k, r in state.items() if r["region"] == "north"]
        self.assertEqual(res[0]["rows_affected"], len(north))
        for k in north:
            if state[k]["balance"] is not None:
                state[k] = dict(state[k], balance=state[k]["balance"] - 500)
        self.assertEqual(res[1]["rows_affected"], 1)
        del state[some]
        self.assertEqual(res[2]["rows"], solvent(state))
        # That SELECT waited for solvent only; accounts_by_region is waited for here.
        cols, got = self.select("SELECT * FROM accounts_by_region", wait_for=res[0]["offsets"] + res[1]["offsets"])
        self.assertEqual(sorted(got, key=none_last), sorted(by_region(state), key=none_last))

        # Each changelog, folded, is its view.
        for name, key_cols in (("accounts_by_region", ["region"]), ("solvent", ["id"])):
            cols, got = self.select(f"SELECT * FROM {name}")
            want_state = rows_by_key(cols, got, key_cols)
            consumer, fold = followers[name]
            deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
            while fold.rows != want_state and time.monotonic() < deadline:
                self.drain(consumer, fold, 0.3)
            self.assertEqual(fold.problems[:5], [], f"{name}: {len(fold.problems)} changes contradict the fold")
            self.assertEqual(fold.rows, want_state, f"changelog of {name} folded")
            self.assertGreater(fold.records, len(want_state), name)
        for name, (_, fold) in followers.items():
            self.assertEqual(fold.format_problems[:5], [], f"{name}: {len(fold.format_problems)} changelog records "
                             "shaped otherwise than docs/SQL.md says")

    def follow(self, topic):
        """A confluent consumer assigned to every partition of `topic` from the
        beginning, and the fold of what it reads."""
        consumer = confluent_kafka.Consumer({"bootstrap.servers": self.bootstrap, "group.id": "views-follow",
                                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        self.addCleanup(consumer.close)
        deadline = time.monotonic() + 10
        while True:
            md = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if md is not None and md.error is None and md.partitions:
                break
            self.assertLess(time.monotonic(), deadline, f"changelog topic {topic} does not exist: {md}")
            time.sleep(0.1)
        consumer.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                         for p in sorted(md.partitions)])
        return consumer, ChangelogFold()

    def drain(self, consumer, fold, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for m in consumer.consume(num_messages=5000, timeout=0.1):
                if m.error():
                    self.fail(f"changelog consumer error: {m.error()}")
                fold.add(m.key(), m.value(), f"{m.topic()}/{m.partition()}@{m.offset()}")


if __name__ == "__main__":
    unittest.main()
