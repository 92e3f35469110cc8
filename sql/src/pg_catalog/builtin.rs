//! The built-in Postgres types the catalog lists: their OIDs, names and
//! sizes are fixed in every Postgres release, so clients look them up by
//! OID (JDBC asks `pg_type` for any OID it does not know by heart).

/// One row of `pg_type` for a built-in type.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinType {
    /// `oid`.
    pub oid: u32,
    /// `typname`.
    pub name: &'static str,
    /// `typlen`: the fixed size in bytes, or -1.
    pub len: i16,
    /// `typcategory`.
    pub category: char,
    /// `typelem`: the element type of an array type, else 0.
    pub elem: u32,
    /// `typarray`: the array type of this type, else 0.
    pub array: u32,
    /// What `format_type(oid, -1)` prints.
    pub sql_name: &'static str,
}

const fn t(oid: u32, name: &'static str, len: i16, category: char, array: u32, sql_name: &'static str) -> BuiltinType {
    BuiltinType {
        oid,
        name,
        len,
        category,
        elem: 0,
        array,
        sql_name,
    }
}

const fn a(oid: u32, name: &'static str, elem: u32, sql_name: &'static str) -> BuiltinType {
    BuiltinType {
        oid,
        name,
        len: -1,
        category: 'A',
        elem,
        array: 0,
        sql_name,
    }
}

/// Every built-in type listed, scalars then arrays.
pub const TYPES: &[BuiltinType] = &[
    t(16, "bool", 1, 'B', 1000, "boolean"),
    t(17, "bytea", -1, 'U', 1001, "bytea"),
    t(18, "char", 1, 'Z', 1002, "\"char\""),
    t(19, "name", 64, 'S', 1003, "name"),
    t(20, "int8", 8, 'N', 1016, "bigint"),
    t(21, "int2", 2, 'N', 1005, "smallint"),
    t(23, "int4", 4, 'N', 1007, "integer"),
    t(24, "regproc", 4, 'N', 1008, "regproc"),
    t(25, "text", -1, 'S', 1009, "text"),
    t(26, "oid", 4, 'N', 1028, "oid"),
    t(114, "json", -1, 'U', 199, "json"),
    t(142, "xml", -1, 'U', 143, "xml"),
    t(650, "cidr", -1, 'I', 651, "cidr"),
    t(700, "float4", 4, 'N', 1021, "real"),
    t(701, "float8", 8, 'N', 1022, "double precision"),
    t(790, "money", 8, 'N', 791, "money"),
    t(829, "macaddr", 6, 'U', 1040, "macaddr"),
    t(869, "inet", -1, 'I', 1041, "inet"),
    t(1042, "bpchar", -1, 'S', 1014, "character"),
    t(1043, "varchar", -1, 'S', 1015, "character varying"),
    t(1082, "date", 4, 'D', 1182, "date"),
    t(1083, "time", 8, 'D', 1183, "time without time zone"),
    t(1114, "timestamp", 8, 'D', 1115, "timestamp without time zone"),
    t(1184, "timestamptz", 8, 'D', 1185, "timestamp with time zone"),
    t(1186, "interval", 16, 'T', 1187, "interval"),
    t(1266, "timetz", 12, 'D', 1270, "time with time zone"),
    t(1560, "bit", -1, 'V', 1561, "bit"),
    t(1562, "varbit", -1, 'V', 1563, "bit varying"),
    t(1700, "numeric", -1, 'N', 1231, "numeric"),
    t(2205, "regclass", 4, 'N', 2210, "regclass"),
    t(2206, "regtype", 4, 'N', 2211, "regtype"),
    t(2950, "uuid", 16, 'U', 2951, "uuid"),
    t(3802, "jsonb", -1, 'U', 3807, "jsonb"),
    a(1000, "_bool", 16, "boolean[]"),
    a(1001, "_bytea", 17, "bytea[]"),
    a(1002, "_char", 18, "\"char\"[]"),
    a(1003, "_name", 19, "name[]"),
    a(1005, "_int2", 21, "smallint[]"),
    a(1007, "_int4", 23, "integer[]"),
    a(1008, "_regproc", 24, "regproc[]"),
    a(1009, "_text", 25, "text[]"),
    a(1014, "_bpchar", 1042, "character[]"),
    a(1015, "_varchar", 1043, "character varying[]"),
    a(1016, "_int8", 20, "bigint[]"),
    a(1021, "_float4", 700, "real[]"),
    a(1022, "_float8", 701, "double precision[]"),
    a(1028, "_oid", 26, "oid[]"),
    a(1040, "_macaddr", 829, "macaddr[]"),
    a(1041, "_inet", 869, "inet[]"),
    a(143, "_xml", 142, "xml[]"),
    a(199, "_json", 114, "json[]"),
    a(651, "_cidr", 650, "cidr[]"),
    a(791, "_money", 790, "money[]"),
    a(1115, "_timestamp", 1114, "timestamp without time zone[]"),
    a(1182, "_date", 1082, "date[]"),
    a(1183, "_time", 1083, "time without time zone[]"),
    a(1185, "_timestamptz", 1184, "timestamp with time zone[]"),
    a(1187, "_interval", 1186, "interval[]"),
    a(1231, "_numeric", 1700, "numeric[]"),
    a(1270, "_timetz", 1266, "time with time zone[]"),
    a(1561, "_bit", 1560, "bit[]"),
    a(1563, "_varbit", 1562, "bit varying[]"),
    a(2210, "_regclass", 2205, "regclass[]"),
    a(2211, "_regtype", 2206, "regtype[]"),
    a(2951, "_uuid", 2950, "uuid[]"),
    a(3807, "_jsonb", 3802, "jsonb[]"),
];

/// The built-in type with this OID.
pub fn by_oid(oid: u32) -> Option<&'static BuiltinType> {
    TYPES.iter().find(|t| t.oid == oid)
}

/// `typlen` of a captured column's type `oid`: the built-in type's, and -1
/// (variable) for any other, whose size the store does not keep.
pub fn typlen(oid: u32) -> i16 {
    by_oid(oid).map_or(-1, |t| t.len)
}

/// `typlen` of the built-in type `oid`; in a constant, an OID not listed
/// stops the build.
pub const fn len_of(oid: u32) -> i16 {
    let mut rest = TYPES;
    while let [t, tail @ ..] = rest {
        if t.oid == oid {
            return t.len;
        }
        rest = tail;
    }
    panic!("not a built-in type")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_elements_point_at_each_other() {
        let mut oids: Vec<u32> = TYPES.iter().map(|t| t.oid).collect();
        oids.sort_unstable();
        oids.dedup();
        assert_eq!(oids.len(), TYPES.len(), "an OID is listed twice");
        for t in TYPES {
            if t.array != 0 {
                let array = by_oid(t.array).unwrap_or_else(|| panic!("no array type {} for {}", t.array, t.name));
                assert_eq!(array.elem, t.oid, "{}", array.name);
                assert_eq!(array.name, format!("_{}", t.name));
            }
            if t.elem != 0 {
                assert_eq!(by_oid(t.elem).map(|e| e.array), Some(t.oid), "{}", t.name);
            }
        }
    }
}
