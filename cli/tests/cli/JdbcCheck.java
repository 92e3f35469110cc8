// Prints what the PostgreSQL JDBC driver reads for a fixed set of queries:
// each column's type name and, per row, each value as getObject gives it.
// The serve tests run it against Postgres and against `asof serve` at the
// same moment and compare the two outputs line for line.
//
// Usage: java -cp postgresql.jar JdbcCheck.java URL [MOMENT]
// With MOMENT the session first runs SET asof.at = MOMENT.
import java.sql.*;
import java.util.*;

public class JdbcCheck {
    // The driver looks the names of types it does not know by heart (the
    // interval) up in pg_catalog.pg_type.
    static final String COLUMNS = "id, i2, i4, i8, f4, f8, n, b, t, v, by, d, ts, tz, un, u, j, ai, at, iv";

    static final String[] QUERIES = {
        "SELECT " + COLUMNS + " FROM types ORDER BY id",
        "SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM orders o JOIN customers c "
            + "ON c.id = o.customer_id GROUP BY c.region ORDER BY c.region",
    };

    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0])) {
            if (args.length > 1) {
                try (Statement s = c.createStatement()) {
                    s.execute("SET asof.at = '" + args[1].replace("'", "''") + "'");
                }
            }
            // What tools read of the catalog: the tables and their columns.
            DatabaseMetaData meta = c.getMetaData();
            try (ResultSet r = meta.getTables(null, "public", "%", new String[] {"TABLE"})) {
                print("tables", r, "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE");
            }
            try (ResultSet r = meta.getColumns(null, "public", "%", "%")) {
                print("columns", r, "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE", "TYPE_NAME", "COLUMN_SIZE",
                    "DECIMAL_DIGITS", "NULLABLE", "ORDINAL_POSITION");
            }
            for (String q : QUERIES) {
                try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(q)) {
                    print(q, r);
                }
            }
            // Past the driver's prepareThreshold (5) the statement is prepared
            // on the server and typed values travel in binary.
            for (int i = 0; i < 8; i++) {
                try (PreparedStatement p = c.prepareStatement(
                        "SELECT " + COLUMNS + " FROM types WHERE id = ? OR t = ? ORDER BY id")) {
                    p.setInt(1, 1 + i % 4);
                    p.setString(2, "plain");
                    try (ResultSet r = p.executeQuery()) {
                        print("prepared " + i, r);
                    }
                }
            }
        }
    }

    static void print(String title, ResultSet r) throws SQLException {
        ResultSetMetaData m = r.getMetaData();
        StringBuilder head = new StringBuilder("# " + title + ":");
        for (int i = 1; i <= m.getColumnCount(); i++) {
            head.append(' ').append(m.getColumnName(i)).append('/').append(m.getColumnTypeName(i));
        }
        System.out.println(head);
        while (r.next()) {
            StringBuilder row = new StringBuilder();
            for (int i = 1; i <= m.getColumnCount(); i++) {
                row.append(i > 1 ? " | " : "").append(show(r.getObject(i)));
            }
            System.out.println(row);
        }
    }

    static void print(String title, ResultSet r, String... columns) throws SQLException {
        System.out.println("# " + title + ": " + String.join(" ", columns));
        while (r.next()) {
            StringBuilder row = new StringBuilder();
            for (String column : columns) {
                row.append(row.length() > 0 ? " | " : "").append(r.getString(column));
            }
            System.out.println(row);
        }
    }

    static String show(Object v) throws SQLException {
        if (v == null) return "NULL";
        if (v instanceof byte[] b) return "bytes " + HexFormat.of().formatHex(b);
        if (v instanceof Array a) return "array " + Arrays.deepToString((Object[]) a.getArray());
        return v.getClass().getSimpleName() + " " + v;
    }
}
