"""Reads Parquet files written by `asof export` with pyarrow and duckdb, and
compares them with rows Postgres showed, each value by its type.

Usage: parquet_check.py rows FILE EXPECTED_JSON
         EXPECTED_JSON: a list of objects, one per row in key order, each
         value in the form Postgres printed it for the comparison (see
         `same`); the file must hold exactly these rows in this order.
       parquet_check.py scd FILE LSN EXPECTED_JSON KEY
         The rows of an SCD type-2 file valid at LSN (via duckdb), ordered
         by KEY, must be EXPECTED_JSON (values as for `rows`).
       parquet_check.py sql FILE QUERY
         Prints the result of QUERY (over the view `t` of FILE) in duckdb as
         JSON.

Prints nothing and exits 0 when equal; otherwise names the first
difference and exits 1.
"""

import decimal
import json
import math
import struct
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq


def same(arrow_type, got, want):
    """Whether the Arrow value `got` is the Postgres value `want`.

    `want` comes from Postgres in a form this function reads independently
    of asof: text for numbers, text and uuids; days since 1970 for dates,
    microseconds since 1970 for timestamps; hex for bytea; a JSON array
    (array_to_json) for arrays; 'true'/'false' for bools; None for NULL.
    """
    if want is None or got is None:
        return want is None and got is None
    if pa.types.is_integer(arrow_type):
        return got == int(want)
    if pa.types.is_floating(arrow_type):
        special = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}
        w = float(special.get(want, want))
        if pa.types.is_float32(arrow_type):
            w = struct.unpack("f", struct.pack("f", w))[0]
        return (math.isnan(w) and math.isnan(got)) or w == got
    if pa.types.is_decimal(arrow_type):
        return isinstance(got, decimal.Decimal) and str(got) == want
    if pa.types.is_boolean(arrow_type):
        return got == (want == "true")
    if pa.types.is_binary(arrow_type):
        return got.hex() == want
    if pa.types.is_date32(arrow_type) or pa.types.is_timestamp(arrow_type):
        return got == int(want)
    if pa.types.is_list(arrow_type):
        return got == json.loads(want)
    return got == want


def plain_columns(table):
    """Dates and timestamps as their raw integers (Python's datetime has no
    BC years); everything else as it is."""
    cols = {}
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_date32(field.type):
            col = col.cast(pa.int32())
        elif pa.types.is_timestamp(field.type):
            col = col.cast(pa.int64())
        cols[field.name] = (field.type, col.to_pylist())
    return cols


def compare(table, expected, what):
    cols = plain_columns(table)
    if table.num_rows != len(expected):
        fail(f"{what}: {table.num_rows} rows, Postgres had {len(expected)}")
    for i, want_row in enumerate(expected):
        for name, want in want_row.items():
            if name not in cols:
                fail(f"{what}: no column {name}; has {list(cols)}")
            arrow_type, values = cols[name]
            got = values[i]
            if not same(arrow_type, got, want):
                fail(f"{what}: row {i} column {name} ({arrow_type}): {got!r}, Postgres had {want!r}")


def fail(message):
    print(message)
    sys.exit(1)


def main():
    mode = sys.argv[1]
    if mode == "rows":
        path, expected = sys.argv[2], json.load(open(sys.argv[3]))
        compare(pq.read_table(path), expected, path)
        # duckdb reads the same file and counts the same rows.
        n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
        if n != len(expected):
            fail(f"{path}: duckdb counts {n} rows, Postgres had {len(expected)}")
    elif mode == "scd":
        path, lsn, expected, key = sys.argv[2], int(sys.argv[3]), json.load(open(sys.argv[4])), sys.argv[5]
        valid = duckdb.sql(
            f"SELECT * FROM read_parquet('{path}') "
            f"WHERE asof_valid_from_lsn <= {lsn} AND (asof_valid_to_lsn IS NULL OR asof_valid_to_lsn > {lsn}) "
            f"ORDER BY {key}"
        ).arrow()
        if isinstance(valid, pa.RecordBatchReader):
            valid = valid.read_all()
        compare(valid, expected, f"{path} at {lsn}")
    elif mode == "sql":
        path, query = sys.argv[2], sys.argv[3]
        con = duckdb.connect()
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
        print(json.dumps(con.execute(query).fetchall(), default=str))
    else:
        fail(f"unknown mode {mode}")


main()
