//! Typed column handles and the filter and order expressions they build.
//!
//! `User::EMAIL.eq("ada@example.com")` is a [`Filter`] holding the column name (an identifier
//! checked at compile time) and the value as a bound parameter: values never become SQL text.

use super::arg::Arg;
use crate::{FromValue, ParamLiteral};
use gluesql_core::translate::IntoParamLiteral;
use std::{borrow::Cow, fmt, marker::PhantomData};

/// A Rust type a model field can have: it reads from a column value and binds as a
/// parameter. Implemented for `i8`–`i64`, `u8`–`u64`, `f64`, `bool`, `String`, `Vec<u8>` and
/// `Option<T>` of these (a NULL-able column).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a gluebind model column",
    note = "supported: i8, i16, i32, i64, u8, u16, u32, u64, f64, bool, String, Vec<u8>, and \
            Option<T> of these"
)]
pub trait ColumnType: FromValue {
    /// The value a filter compares the column with (`T` for both `T` and `Option<T>`).
    type Value: IntoParamLiteral;

    /// True for `Option<T>`: the column holds NULLs.
    const NULLABLE: bool;

    /// The field's value as a bound parameter (NULL for `None`).
    fn to_param(&self) -> ParamLiteral;
}

macro_rules! column_types {
    ($($ty:ty),+ $(,)?) => {$(
        impl ColumnType for $ty {
            type Value = $ty;
            const NULLABLE: bool = false;
            fn to_param(&self) -> ParamLiteral {
                self.clone().into_param_literal()
            }
        }
        impl ColumnType for Option<$ty> {
            type Value = $ty;
            const NULLABLE: bool = true;
            fn to_param(&self) -> ParamLiteral {
                self.clone().into_param_literal()
            }
        }
    )+};
}

column_types!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    f64,
    bool,
    String,
    Vec<u8>
);

/// A value usable where a column's value `V` is expected: `V` itself, and `&str` for text,
/// `&[u8]` for bytes. (A trait of its own rather than `Into<V>`, so that an integer literal
/// takes the column's type: `User::AGE.eq(30)` on a `u8` column.)
pub trait IntoColumnValue<V> {
    /// The value.
    fn into_column_value(self) -> V;
}

impl<V> IntoColumnValue<V> for V {
    fn into_column_value(self) -> V {
        self
    }
}

impl IntoColumnValue<String> for &str {
    fn into_column_value(self) -> String {
        self.to_owned()
    }
}

impl IntoColumnValue<String> for &String {
    fn into_column_value(self) -> String {
        self.clone()
    }
}

impl IntoColumnValue<Vec<u8>> for &[u8] {
    fn into_column_value(self) -> Vec<u8> {
        self.to_vec()
    }
}

/// A value for a NULL-able column ([`Column::set`] on an `Option<T>` field): `Some` of it.
impl<V> IntoColumnValue<Option<V>> for V {
    fn into_column_value(self) -> Option<V> {
        Some(self)
    }
}

impl IntoColumnValue<Option<String>> for &str {
    fn into_column_value(self) -> Option<String> {
        Some(self.to_owned())
    }
}

impl IntoColumnValue<Option<String>> for &String {
    fn into_column_value(self) -> Option<String> {
        Some(self.clone())
    }
}

impl IntoColumnValue<Option<Vec<u8>>> for &[u8] {
    fn into_column_value(self) -> Option<Vec<u8>> {
        Some(self.to_vec())
    }
}

/// A column of model `M` whose field has type `T`; the derive makes one per field
/// (`User::EMAIL`). Its methods build [`Filter`]s and [`Order`]s whose values are bound
/// parameters.
pub struct Column<M, T> {
    name: &'static str,
    _types: PhantomData<fn() -> (M, T)>,
}

// Manual impls: a derive would require `M: Clone`, which a handle does not need.
impl<M, T> Clone for Column<M, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M, T> Copy for Column<M, T> {}

impl<M, T> fmt::Debug for Column<M, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Column({})", self.name)
    }
}

/// Comparison operators of [`Filter`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

impl Op {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Like => "LIKE",
        }
    }
}

/// A column in a filter: its name (`'static` for derived models), and whether it holds NULLs.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    pub(crate) name: Cow<'static, str>,
    pub(crate) nullable: bool,
}

/// A filter expression, untyped (the typed wrapper is [`Filter`]; the npm package builds them
/// from its query descriptions, see `model::dynamic`).
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Compare(Col, Op, Arg),
    IsNull(Cow<'static, str>, bool),
    In(Col, Vec<Arg>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

/// An ordering, untyped: what [`Order`] and the npm package's `orderBy` become.
#[derive(Debug, Clone)]
pub(crate) struct OrderBy {
    pub(crate) column: Cow<'static, str>,
    pub(crate) descending: bool,
}

impl<M, T: ColumnType> Column<M, T> {
    /// Used by the derive; the name must be a checked identifier.
    #[doc(hidden)]
    #[must_use]
    pub const fn __new(name: &'static str) -> Self {
        Self {
            name,
            _types: PhantomData,
        }
    }

    /// The column's name in the table.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.name
    }

    fn col(self) -> Col {
        Col {
            name: Cow::Borrowed(self.name),
            nullable: T::NULLABLE,
        }
    }

    fn compare(self, op: Op, value: impl IntoColumnValue<T::Value>) -> Filter<M> {
        let value = value.into_column_value().into_param_literal();
        Filter::new(Expr::Compare(self.col(), op, value.into()))
    }

    /// `column = value`. (Never true for a NULL column value: use [`Column::is_null`].)
    pub fn eq(self, value: impl IntoColumnValue<T::Value>) -> Filter<M> {
        self.compare(Op::Eq, value)
    }

    /// `column <> value`.
    pub fn ne(self, value: impl IntoColumnValue<T::Value>) -> Filter<M> {
        self.compare(Op::Ne, value)
    }

    /// `column < value`.
    pub fn lt(self, value: impl IntoColumnValue<T::Value>) -> Filter<M> {
        self.compare(Op::Lt, value)
    }

    /// `column <= value`.
    pub fn le(self, value: impl IntoColumnValue<T::Value>) -> Filter<M> {
        self.compare(Op::Le, value)
    }

    /// `column > value`.
    pub fn gt(self, value: impl IntoColumnValue<T::Value>) -> Filter<M> {
        self.compare(Op::Gt, value)
    }

    /// `column >= value`.
    pub fn ge(self, value: impl IntoColumnValue<T::Value>) -> Filter<M> {
        self.compare(Op::Ge, value)
    }

    /// `column IN (values...)`; an empty list matches no row.
    pub fn is_in<V: IntoColumnValue<T::Value>>(
        self,
        values: impl IntoIterator<Item = V>,
    ) -> Filter<M> {
        let values = values
            .into_iter()
            .map(|v| Arg::Typed(v.into_column_value().into_param_literal()))
            .collect();
        Filter::new(Expr::In(self.col(), values))
    }

    /// `column = value`, for a bulk update ([`crate::model::Query::update`]):
    /// `User::NAME.set("Ada")`. The value has the field's type, so an `Option` field's column
    /// takes a value or `None` (NULL), and a NOT NULL column never gets NULL; it is bound as a
    /// parameter.
    pub fn set(self, value: impl IntoColumnValue<T>) -> Assignment<M> {
        Assignment {
            column: self.name,
            value: value.into_column_value().to_param(),
            _model: PhantomData,
        }
    }

    /// Ascending order on this column, for [`crate::model::Query::order_by`].
    pub fn asc(self) -> Order<M> {
        Order::new(self.name, false)
    }

    /// Descending order on this column, for [`crate::model::Query::order_by`].
    pub fn desc(self) -> Order<M> {
        Order::new(self.name, true)
    }
}

impl<M, T: ColumnType<Value = String>> Column<M, T> {
    /// `column LIKE pattern` (`%` any run of characters, `_` one character). The pattern is a
    /// bound parameter, so its quotes and backslashes are plain characters.
    pub fn like(self, pattern: impl IntoColumnValue<String>) -> Filter<M> {
        self.compare(Op::Like, pattern)
    }
}

impl<M, T> Column<M, Option<T>>
where
    Option<T>: ColumnType,
{
    /// `column IS NULL` (only NULL-able columns, the `Option<T>` fields, have it).
    pub fn is_null(self) -> Filter<M> {
        Filter::new(Expr::IsNull(Cow::Borrowed(self.name), true))
    }

    /// `column IS NOT NULL`.
    pub fn is_not_null(self) -> Filter<M> {
        Filter::new(Expr::IsNull(Cow::Borrowed(self.name), false))
    }
}

/// A condition on rows of model `M`, for [`crate::model::Query::filter`]. Combine with
/// [`Filter::and`], [`Filter::or`] and `!`.
#[must_use = "a filter does nothing until passed to Query::filter"]
pub struct Filter<M> {
    pub(crate) expr: Expr,
    _model: PhantomData<fn() -> M>,
}

impl<M> Clone for Filter<M> {
    fn clone(&self) -> Self {
        Self::new(self.expr.clone())
    }
}

impl<M> fmt::Debug for Filter<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl<M> Filter<M> {
    pub(crate) fn new(expr: Expr) -> Self {
        Self {
            expr,
            _model: PhantomData,
        }
    }

    /// Both conditions hold.
    pub fn and(self, other: Filter<M>) -> Filter<M> {
        Self::new(match self.expr {
            Expr::And(mut all) => {
                all.push(other.expr);
                Expr::And(all)
            }
            expr => Expr::And(vec![expr, other.expr]),
        })
    }

    /// Either condition holds.
    pub fn or(self, other: Filter<M>) -> Filter<M> {
        Self::new(match self.expr {
            Expr::Or(mut any) => {
                any.push(other.expr);
                Expr::Or(any)
            }
            expr => Expr::Or(vec![expr, other.expr]),
        })
    }
}

impl<M> std::ops::Not for Filter<M> {
    type Output = Filter<M>;

    /// The condition does not hold (`NOT (...)`).
    fn not(self) -> Filter<M> {
        Self::new(Expr::Not(Box::new(self.expr)))
    }
}

/// An ordering on a column of model `M`: `User::ID.desc()`.
#[must_use = "an order does nothing until passed to Query::order_by"]
pub struct Order<M> {
    pub(crate) column: &'static str,
    pub(crate) descending: bool,
    _model: PhantomData<fn() -> M>,
}

impl<M> Order<M> {
    fn new(column: &'static str, descending: bool) -> Self {
        Self {
            column,
            descending,
            _model: PhantomData,
        }
    }

    pub(crate) fn untyped(self) -> OrderBy {
        OrderBy {
            column: Cow::Borrowed(self.column),
            descending: self.descending,
        }
    }
}

impl<M> Clone for Order<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Order<M> {}

impl<M> fmt::Debug for Order<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.descending { "DESC" } else { "ASC" };
        write!(f, "Order({} {dir})", self.column)
    }
}

/// One `column = value` of a bulk update: what [`Column::set`] builds for
/// [`crate::model::Query::update`] (`User::NAME.set("Ada")`). The value is a bound parameter.
#[must_use = "an assignment does nothing until passed to Query::update"]
pub struct Assignment<M> {
    pub(crate) column: &'static str,
    pub(crate) value: ParamLiteral,
    _model: PhantomData<fn() -> M>,
}

impl<M> Assignment<M> {
    /// The column it sets.
    #[must_use]
    pub const fn column(&self) -> &'static str {
        self.column
    }
}

impl<M> Clone for Assignment<M> {
    fn clone(&self) -> Self {
        Self {
            column: self.column,
            value: self.value.clone(),
            _model: PhantomData,
        }
    }
}

impl<M> fmt::Debug for Assignment<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Assignment({} = {:?})", self.column, self.value)
    }
}
