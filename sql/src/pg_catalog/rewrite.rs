//! Postgres spellings that clients send to the catalog and DataFusion does
//! not read, rewritten to ones it does before planning:
//!
//! - bare catalog names (`pg_type`) are `pg_catalog.pg_type`, as Postgres
//!   searches `pg_catalog` first;
//! - `pg_catalog.f(...)` is `f(...)`, and `OPERATOR(pg_catalog.~)` is `~`;
//! - `current_catalog` and `current_schema` are what they name;
//! - `COLLATE ...` is dropped (text compares byte-wise here anyway);
//! - a name cast to `regclass` is `to_regclass(name)`, the table's OID;
//! - casts to `oid` and the other `reg*` types are casts to `bigint` (the type
//!   the catalog's OID columns have), except a name cast to `regproc`,
//!   which stays the function's name; `pg_catalog.int4` and the like are
//!   their SQL names;
//! - a scalar subquery that reads an empty catalog (`pg_attrdef`,
//!   `pg_collation`, ...) without an outer join is `NULL`, which is what
//!   it returns; DataFusion cannot plan many of the correlated ones
//!   clients send;
//!   and in a query that reads such an empty catalog and does not
//!   aggregate, every output expression but a column is `NULL` and the
//!   condition is `false` (no row comes out either way, and clients call
//!   functions there that are not here);
//! - any other scalar subquery over the catalog alone that does not aggregate
//!   takes `max` of its one column: Postgres requires it to return at
//!   most one row, and DataFusion requires a correlated one to aggregate.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
    GroupByExpr, Ident, JoinOperator, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, Value, ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut,
};

/// Rewrites `statement` in place; `catalog_tables` are the tables of
/// `pg_catalog`.
/// `empty_tables` are those of its tables that have no rows.
pub fn rewrite(statement: &mut Statement, catalog_tables: &[&str], empty_tables: &[&str]) {
    let _ = statement.visit(&mut Rewriter {
        catalog_tables,
        empty_tables,
    });
}

struct Rewriter<'a> {
    catalog_tables: &'a [&'a str],
    empty_tables: &'a [&'a str],
}

impl Rewriter<'_> {
    /// Whether `select` inner-joins an empty catalog, so returns no rows.
    fn reads_nothing(&self, select: &Select) -> bool {
        let empty = |f: &TableFactor| match f {
            TableFactor::Table { name, args: None, .. } if is_catalog_qualified(name) => parts(name)
                .last()
                .is_some_and(|n| self.empty_tables.contains(&n.as_str())),
            _ => false,
        };
        let keeps_right = |j: &datafusion::sql::sqlparser::ast::Join| {
            matches!(
                j.join_operator,
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) | JoinOperator::FullOuter(_)
            )
        };
        select.from.iter().any(|t| {
            (empty(&t.relation) && !t.joins.iter().any(keeps_right))
                || t.joins.iter().any(|j| {
                    empty(&j.relation)
                        && matches!(
                            j.join_operator,
                            JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
                        )
                })
        })
    }
}

fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.to_lowercase(),
            ObjectNamePart::Function(f) => f.name.value.to_lowercase(),
        })
        .collect()
}

fn is_catalog_qualified(name: &ObjectName) -> bool {
    let p = parts(name);
    p.len() == 2 && p.first().is_some_and(|s| s == "pg_catalog")
}

/// Whether every relation `select` reads is a `pg_catalog` table.
fn reads_only_catalog(select: &Select) -> bool {
    let catalog =
        |f: &TableFactor| matches!(f, TableFactor::Table { name, args: None, .. } if is_catalog_qualified(name));
    !select.from.is_empty()
        && select
            .from
            .iter()
            .all(|t| catalog(&t.relation) && t.joins.iter().all(|j| catalog(&j.relation)))
}

fn is_aggregate(e: &Expr) -> bool {
    const AGGREGATES: [&str; 10] = [
        "max",
        "min",
        "count",
        "sum",
        "avg",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "every",
    ];
    matches!(e, Expr::Function(f) if parts(&f.name).last().is_some_and(|n| AGGREGATES.contains(&n.as_str())))
}

/// `name()`.
fn call0(name: &str) -> Expr {
    let mut f = call(name, Expr::value(Value::Null));
    if let Expr::Function(Function {
        args: FunctionArguments::List(list),
        ..
    }) = &mut f
    {
        list.args.clear();
    }
    f
}

/// `name(e)`.
fn call(name: &str, e: Expr) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(e))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// The data type a Postgres type name is read as, if it needs one.
fn data_type_for(name: &str) -> Option<DataType> {
    Some(match name {
        "oid" | "regclass" | "regtype" | "regnamespace" | "regrole" | "regproc" | "regprocedure" | "xid" | "cid" => {
            DataType::BigInt(None)
        }
        "text" | "name" | "bpchar" | "varchar" | "char" => DataType::Text,
        "int2" => DataType::SmallInt(None),
        "int4" => DataType::Int(None),
        "int8" => DataType::BigInt(None),
        "bool" => DataType::Boolean,
        "float4" => DataType::Real,
        "float8" => DataType::Double(datafusion::sql::sqlparser::ast::ExactNumberInfo::None),
        _ => return None,
    })
}

/// Finds an aggregate outside any subquery.
#[derive(Default)]
struct AggregateFinder {
    depth: usize,
}

impl Visitor for AggregateFinder {
    type Break = ();

    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match self.depth == 0 && is_aggregate(e) {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }
}

/// Whether `e` aggregates (an aggregate in a subquery of it does not count).
fn has_aggregate(e: &Expr) -> bool {
    e.visit(&mut AggregateFinder::default()).is_break()
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let outputs = || {
            select.projection.iter().filter_map(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                _ => None,
            })
        };
        let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty());
        if self.reads_nothing(select) && !grouped && !outputs().any(has_aggregate) {
            select.selection = Some(Expr::value(Value::Boolean(false)));
            for (i, item) in select.projection.iter_mut().enumerate() {
                match item {
                    SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => {}
                    SelectItem::UnnamedExpr(_) => {
                        *item = SelectItem::ExprWithAlias {
                            expr: Expr::value(Value::Null),
                            alias: Ident::new(format!("column{}", i + 1)),
                        };
                    }
                    SelectItem::ExprWithAlias { expr, .. } => *expr = Expr::value(Value::Null),
                    _ => {}
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        if let [ObjectNamePart::Identifier(only)] = relation.0.as_slice() {
            if self.catalog_tables.contains(&only.value.as_str()) {
                let only = only.clone();
                relation.0 = vec![
                    ObjectNamePart::Identifier(Ident::new("pg_catalog")),
                    ObjectNamePart::Identifier(only),
                ];
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            // Keywords in Postgres, so never a column unless quoted.
            Expr::Identifier(i) if i.quote_style.is_none() => match i.value.to_lowercase().as_str() {
                "current_catalog" => *expr = call0("current_database"),
                "current_schema" => *expr = Expr::value(Value::SingleQuotedString("public".into())),
                _ => {}
            },
            // `current_catalog`, read as a function without parentheses.
            Expr::Function(f)
                if matches!(f.args, FunctionArguments::None)
                    && parts(&f.name).last().is_some_and(|n| n == "current_catalog") =>
            {
                *expr = call0("current_database");
            }
            Expr::Subquery(query) => {
                if let SetExpr::Select(select) = query.body.as_ref() {
                    if self.reads_nothing(select) {
                        *expr = Expr::value(Value::Null);
                        return ControlFlow::Continue(());
                    }
                }
                if let SetExpr::Select(select) = query.body.as_mut() {
                    let ungrouped = matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty());
                    if ungrouped && select.having.is_none() && reads_only_catalog(select) {
                        if let [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] =
                            select.projection.as_mut_slice()
                        {
                            if !is_aggregate(e) {
                                let inner = std::mem::replace(e, Expr::value(Value::Null));
                                *e = call("max", inner);
                            }
                        }
                    }
                }
            }
            Expr::Collate { expr: inner, .. } => {
                let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                *expr = inner;
            }
            Expr::Function(f) if is_catalog_qualified(&f.name) => {
                if let Some(last) = f.name.0.pop() {
                    f.name.0 = vec![last];
                }
            }
            Expr::BinaryOp { op, .. } => {
                if let BinaryOperator::PGCustomBinaryOperator(names) = op {
                    let plain = match names.last().map(String::as_str) {
                        Some("~") => Some(BinaryOperator::PGRegexMatch),
                        Some("~*") => Some(BinaryOperator::PGRegexIMatch),
                        Some("!~") => Some(BinaryOperator::PGRegexNotMatch),
                        Some("!~*") => Some(BinaryOperator::PGRegexNotIMatch),
                        Some("=") => Some(BinaryOperator::Eq),
                        Some("<>") => Some(BinaryOperator::NotEq),
                        Some("<") => Some(BinaryOperator::Lt),
                        Some("<=") => Some(BinaryOperator::LtEq),
                        Some(">") => Some(BinaryOperator::Gt),
                        Some(">=") => Some(BinaryOperator::GtEq),
                        _ => None,
                    };
                    if let Some(plain) = plain {
                        *op = plain;
                    }
                }
            }
            Expr::Cast {
                expr: inner, data_type, ..
            } => {
                let name = match data_type {
                    DataType::Regclass => Some("regclass".to_string()),
                    DataType::Custom(name, modifiers) if modifiers.is_empty() => parts(name).pop(),
                    _ => None,
                };
                let Some(name) = name else {
                    return ControlFlow::Continue(());
                };
                // A function's name cast to `regproc` compares with the
                // catalog's function names, which are unqualified.
                if name == "regproc" || name == "regprocedure" {
                    if let Expr::Value(ValueWithSpan {
                        value: Value::SingleQuotedString(s),
                        ..
                    }) = inner.as_mut()
                    {
                        if let Some(rest) = s.strip_prefix("pg_catalog.") {
                            *s = rest.to_string();
                        }
                        *data_type = DataType::Text;
                        return ControlFlow::Continue(());
                    }
                }
                // A table's name cast to `regclass` is its OID.
                if name == "regclass" {
                    if let Expr::Value(ValueWithSpan {
                        value: Value::SingleQuotedString(_),
                        ..
                    }) = inner.as_ref()
                    {
                        let literal = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                        *expr = call("to_regclass", literal);
                        return ControlFlow::Continue(());
                    }
                }
                if let Some(t) = data_type_for(&name) {
                    *data_type = t;
                } else if let DataType::Custom(n, _) = data_type {
                    if is_catalog_qualified(n) {
                        if let Some(last) = n.0.pop() {
                            n.0 = vec![last];
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
