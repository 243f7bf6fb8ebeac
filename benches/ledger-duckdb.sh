#!/usr/bin/env bash
# The anchor for `cargo bench --bench ledger`: the same report query (calls,
# cost, median cost per call and p95 latency per endpoint) run by DuckDB on the
# files that bench left in target/ledger-bench/, with as many threads as cores.
#
#   cargo bench --bench ledger --all-features && bash benches/ledger-duckdb.sh
#
# Needs Python's duckdb package (`pip install duckdb`); set SAGEMETER_DUCKDB_PYTHON
# to a python that has it (default: python3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/target/ledger-bench"
python="${SAGEMETER_DUCKDB_PYTHON:-python3}"
if ! "$python" -c 'import duckdb' 2>/dev/null; then
  echo "DuckDB anchor skipped: $python has no duckdb module (pip install duckdb, or set SAGEMETER_DUCKDB_PYTHON)"
  exit 0
fi
[ -f "$dir/calls.jsonl" ] || { echo "run cargo bench --bench ledger --all-features first" >&2; exit 1; }
exec "$python" - "$dir" <<'PY'
import os, statistics, sys, time
import duckdb

d = sys.argv[1]
con = duckdb.connect()
con.execute(f"SET threads = {os.cpu_count()}")
jsonl = f"""
WITH lines AS (
  SELECT * FROM read_ndjson('{d}/calls.jsonl', format = 'newline_delimited',
    columns = {{'c': 'INTEGER', 'context': 'INTEGER', 'endpoint': 'VARCHAR',
               'cost': 'DECIMAL(38,12)', 'lat': 'BIGINT'}})
), contexts AS (SELECT DISTINCT context AS id, endpoint FROM lines WHERE context IS NOT NULL)
SELECT contexts.endpoint, count(*) AS calls, sum(cost) AS cost_usd,
       quantile_disc(cost, 0.5) AS p50_usd, quantile_disc(lat, 0.95) / 1000 AS p95_ms
FROM lines JOIN contexts ON lines.c = contexts.id
GROUP BY ALL ORDER BY cost_usd DESC
"""
parquet = f"""
SELECT endpoint, count(*) AS calls, sum(cost_usd) AS cost_usd,
       quantile_disc(cost_usd, 0.5) AS p50_usd, quantile_disc(latency_us, 0.95) / 1000 AS p95_ms
FROM read_parquet('{d}/calls.parquet')
GROUP BY ALL ORDER BY cost_usd DESC
"""
print(f"DuckDB {duckdb.__version__}, {os.cpu_count()} threads")
for name, query, path in [("JSONL (format 2)", jsonl, "calls.jsonl"), ("Parquet", parquet, "calls.parquet")]:
    if not os.path.exists(os.path.join(d, path)):
        print(f"{name}: {path} missing (Parquet needs the parquet feature)")
        continue
    times, rows = [], None
    for _ in range(3):
        t = time.perf_counter()
        rows = con.execute(query).fetchall()
        times.append(time.perf_counter() - t)
    calls = sum(r[1] for r in rows)
    secs = statistics.median(times)
    print(f"{name:<18} {calls / secs:>12,.0f} receipts/s ({calls:,} receipts in {secs:.2f} s, median of 3)")
    for r in rows:
        print(f"  {r[0]:<18} {r[1]:>9,} calls  ${r[2]}  p50 ${r[3]}  p95 {r[4]} ms")
PY
