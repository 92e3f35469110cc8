"""psycopg (v3) against `asof serve`, compared with Postgres itself.

  serve_check.py record PG_CONNINFO FILE   Postgres's answers now, saved
  serve_check.py check ASOF_CONNINFO WHEN FILE
      the same queries through asof serve after SET asof.at = WHEN must
      give the same values, of the same Python types, with the same
      column type OIDs and sizes.
  serve_check.py cancel ASOF_CONNINFO
      a query that would run for hours, cancelled from another thread,
      ends with QueryCanceled, and the connection goes on.

Queries use parameters, so psycopg speaks the extended protocol
(Parse/Bind/Describe/Execute).
"""

import datetime
import decimal
import json
import os
import sys
import threading
import time
import uuid

import psycopg

QUERIES = [
    ("by key", "SELECT * FROM types WHERE id = %s", [2]),
    ("by keys", "SELECT id, t FROM types WHERE id IN (%s, %s) ORDER BY id", [1, 3]),
    ("every type", "SELECT * FROM types ORDER BY id", []),
    ("text parameter", "SELECT id FROM types WHERE t = %s", ['a,b "q"']),
    ("date parameter", "SELECT id FROM types WHERE d = %s", [datetime.date(2024, 2, 29)]),
    ("timestamp parameter", "SELECT id FROM types WHERE ts = %s", [datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)]),
    ("uuid parameter", "SELECT id FROM types WHERE u = %s", [uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")]),
    (
        "join",
        "SELECT c.name, count(*) AS n, sum(o.amount) AS total FROM orders o "
        "JOIN customers c ON c.id = o.customer_id WHERE o.amount > %s GROUP BY c.name ORDER BY c.name",
        [decimal.Decimal("10")],
    ),
    ("null parameter", "SELECT count(*) AS n FROM types WHERE i4 = %s", [None]),
]


def value(v):
    """A value as (Python type, comparable text)."""
    if isinstance(v, datetime.datetime) and v.tzinfo is not None:
        return ["datetime+tz", v.astimezone(datetime.timezone.utc).isoformat()]
    if isinstance(v, list):
        return ["list", [value(x) for x in v]]
    if isinstance(v, (bytes, memoryview)):
        return ["bytes", bytes(v).hex()]
    if isinstance(v, dict):
        return ["dict", json.dumps(v, sort_keys=True)]
    return [type(v).__name__, repr(v)]


def answers(conn):
    out = {}
    for name, sql, params in QUERIES:
        cur = conn.execute(sql, params)
        out[name] = {
            "columns": [[d.name, d.type_code, d.internal_size] for d in cur.description],
            "rows": [[value(v) for v in row] for row in cur.fetchall()],
        }
    return out


def cancel(conninfo):
    """Cancels a cross join of 62.5 billion rows while it runs."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # A hang is the failure to guard against, not slowness.
        def give_up():
            print("the query was not cancelled within 300 s")
            sys.stdout.flush()
            os._exit(1)

        watchdog = threading.Timer(300, give_up)
        watchdog.start()
        # Cancel once the query is surely running, and again in case the
        # first request came before it began (one that finds the session
        # idle cancels nothing).
        def cancel_soon():
            for _ in range(30):
                time.sleep(0.5)
                conn.cancel()

        canceller = threading.Thread(target=cancel_soon, daemon=True)
        canceller.start()
        try:
            conn.execute("SELECT count(*) FROM orders a, orders b, orders c, orders d")
            print("the query finished instead of being cancelled")
            sys.exit(1)
        except psycopg.errors.QueryCanceled as e:
            print(f"cancelled: {e}")
        finally:
            watchdog.cancel()
        canceller.join()
        n = conn.execute("SELECT count(*) FROM types WHERE id = %s", [1]).fetchone()
        if n != (1,):
            print(f"the connection did not go on after the cancel: {n!r}")
            sys.exit(1)
        print("the connection goes on")


def main():
    mode = sys.argv[1]
    if mode == "cancel":
        cancel(sys.argv[2])
        return
    if mode == "record":
        with psycopg.connect(sys.argv[2], autocommit=True) as conn:
            json.dump(answers(conn), open(sys.argv[3], "w"), indent=1)
        return
    conninfo, when, path = sys.argv[2:5]
    want = json.load(open(path))
    problems = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"SET asof.at = '{when}'")
        shown = conn.execute("SHOW asof.at").fetchone()[0]
        if not shown.startswith(f"{when}: as of "):
            problems.append(f"SHOW asof.at: {shown!r}")
        got = answers(conn)
        # An error is an error response; the connection goes on.
        try:
            conn.execute("SELECT * FROM nowhere WHERE id = %s", [1])
            problems.append("a query of a missing table succeeded")
        except psycopg.errors.UndefinedTable:
            pass
        if conn.execute("SELECT count(*) FROM types WHERE id = %s", [1]).fetchone() != (1,):
            problems.append("the connection did not go on after an error")
        if conn.info.parameter_status("server_version") is None:
            problems.append("no server_version")
        # The same statement prepared on the server and run again.
        for i in range(3):
            row = conn.execute("SELECT t FROM types WHERE id = %s", [1], prepare=True).fetchone()
            if [value(v) for v in row] != want["by keys"]["rows"][0][1:]:
                problems.append(f"prepared run {i}: {row!r}")
    for name, _, _ in QUERIES:
        if got[name] != want[name]:
            problems.append(f"{name}:\n  asof:     {got[name]}\n  postgres: {want[name]}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"{len(QUERIES)} queries agree")


main()
