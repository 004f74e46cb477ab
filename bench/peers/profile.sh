#!/bin/bash
# perf profiles of the evert server during the workloads it loses against
# its peers (docs/BENCHMARKS.md, "Where evert loses"): a backfill of 3 M
# events inside the server and 100,000 HTTP point reads. Run by hand after
# make bench-peers; writes /tmp/perf-backfill.data and /tmp/perf-reads.data
# (perf report -i FILE --no-children --sort dso,symbol).
set -e
B=${BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build-peers}
D=$(mktemp -d /tmp/evert-perf-XXXX)
$B/evert serve --data-dir $D/d --kafka-port 0 --pg-port 0 --http-port 0 > $D/log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf $D' EXIT
for i in $(seq 100); do grep -q "listening kafka" $D/log && break; sleep 0.1; done
K=$(sed -n 's/.*listening kafka=127.0.0.1:\([0-9]*\) http=127.0.0.1:\([0-9]*\).*/\1/p' $D/log)
H=$(sed -n 's/.*listening kafka=127.0.0.1:\([0-9]*\) http=127.0.0.1:\([0-9]*\).*/\2/p' $D/log)
sql() { curl -s -X POST http://127.0.0.1:$H/v1/sql -H 'Content-Type: application/json' -d "{\"sql\": \"$1\"}"; echo; }
sql "CREATE TABLE events (id bigint, customer text, product bigint, qty int, ts bigint) WITH (topic = 'events', partitions = 1)"
$B/bench/agg_bench evert-append --bootstrap 127.0.0.1:$K --http-port $H --events 3000000 --acks 1 --view none
# backfill of 3M existing events inside the server
perf record -F 1999 -g -p $PID -o /tmp/perf-backfill.data &
PP=$!
sleep 0.5
T0=$(date +%s.%N)
sql "CREATE MATERIALIZED VIEW totals AS SELECT customer, count(*) AS n, sum(qty) AS qty FROM events GROUP BY customer"
until curl -s http://127.0.0.1:$H/v1/views/totals | grep -q '"events":3000000,.*"lag_records":0'; do sleep 0.05; done
echo "backfill 3M: $(echo "$(date +%s.%N) - $T0" | bc) s"
kill -INT $PP; wait $PP || true
# point reads over HTTP
perf record -F 1999 -g -p $PID -o /tmp/perf-reads.data &
PP=$!
sleep 0.5
$B/bench/agg_bench http-reads --http-port $H --reads 100000 --events 3000000
kill -INT $PP; wait $PP || true
