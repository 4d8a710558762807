//! Pagination, ported from Flask-SQLAlchemy 3 (`Query.paginate`, `Pagination`): the rules
//! for page arguments ([`PageRequest`], shared by typed queries and the npm package) and the
//! page's numbers ([`Pagination`]).

use super::{select::Select, Model, Query};
use crate::{Error, Result, Rows};
use std::{future::Future, pin::Pin};

/// Page size when none is given (Flask-SQLAlchemy's 20).
pub(crate) const DEFAULT_PER_PAGE: u64 = 20;

/// Flask-SQLAlchemy's `iter_pages` defaults: left edge, left of current, right of current,
/// right edge.
pub(crate) const ITER_PAGES_DEFAULTS: (u64, u64, u64, u64) = (2, 2, 4, 2);

/// A page argument as given: a number, absent, or something that is not an integer (its
/// text, for the message).
#[derive(Debug, Clone)]
pub(crate) enum PageArg {
    Missing,
    Number(i64),
    Bad(String),
}

impl PageArg {
    /// A request argument, parsed as Flask-SQLAlchemy parses `request.args` (`int(...)`, of
    /// the trimmed text).
    pub(crate) fn parse(text: Option<&str>) -> Self {
        match text {
            None => Self::Missing,
            Some(t) => t
                .trim()
                .parse()
                .map_or_else(|_| Self::Bad(format!("{t:?}")), Self::Number),
        }
    }
}

/// What page to fetch and Flask-SQLAlchemy's rules for it:
/// - `per_page` is first capped at `max_per_page` (if set; no cap by default);
/// - with `error_out` (the default), `page < 1`, `per_page < 1` or an argument that is not an
///   integer is an error, and so is an empty page other than page 1 (a page past the end);
///   page 1 of an empty table is an empty page, not an error;
/// - without `error_out`, such a page is 1, such a per_page the default (20), and a page past
///   the end is an empty page.
#[derive(Debug, Clone)]
pub(crate) struct PageRequest {
    pub(crate) page: PageArg,
    pub(crate) per_page: PageArg,
    pub(crate) default_per_page: u64,
    pub(crate) max_per_page: Option<u64>,
    pub(crate) error_out: bool,
    /// Whether to count the matching rows (Flask-SQLAlchemy's `count`, default true).
    pub(crate) count: bool,
}

/// One page of rows, before they become a model's values (typed) or JavaScript objects.
pub(crate) struct Page {
    pub(crate) rows: Rows,
    pub(crate) page: u64,
    pub(crate) per_page: u64,
    /// `None` when not counted.
    pub(crate) total: Option<u64>,
    /// Uncounted: whether a row follows this page.
    pub(crate) more: bool,
    pub(crate) max_per_page: Option<u64>,
}

impl PageRequest {
    pub(crate) fn new(page: PageArg, per_page: PageArg) -> Self {
        Self {
            page,
            per_page,
            default_per_page: DEFAULT_PER_PAGE,
            max_per_page: None,
            error_out: true,
            count: true,
        }
    }

    /// Flask-SQLAlchemy's `_prepare_page_args`: the page and page size to query, or why not.
    pub(crate) fn page_args(&self, select: &Select) -> Result<(u64, u64)> {
        let bad = |what: &str, value: &dyn std::fmt::Display| -> Error {
            select.not_found(format!(
                "{what} {value} is not valid: page numbers start at 1 and per_page is at least \
                 1; pass integers in range"
            ))
        };
        let page = match &self.page {
            PageArg::Missing => 1,
            PageArg::Number(n) => *n,
            PageArg::Bad(_) if !self.error_out => 1,
            PageArg::Bad(text) => return Err(bad("page", text)),
        };
        let default = i64::try_from(self.default_per_page).unwrap_or(i64::MAX);
        let mut per_page = match &self.per_page {
            PageArg::Missing => default,
            PageArg::Number(n) => *n,
            PageArg::Bad(_) if !self.error_out => default,
            PageArg::Bad(text) => return Err(bad("per_page", text)),
        };
        if let Some(max) = self.max_per_page {
            per_page = per_page.min(i64::try_from(max).unwrap_or(i64::MAX));
        }
        let page = match u64::try_from(page) {
            Ok(p) if p >= 1 => p,
            _ if !self.error_out => 1,
            _ => return Err(bad("page", &page)),
        };
        let per_page = match u64::try_from(per_page) {
            Ok(n) if n >= 1 => n,
            _ if !self.error_out => self.default_per_page,
            _ => return Err(bad("per_page", &per_page)),
        };
        Ok((page, per_page))
    }

    /// The page's rows and the total count (or, uncounted, whether a row follows them).
    pub(crate) async fn fetch(&self, select: &Select) -> Result<Page> {
        let (page, per_page) = self.page_args(select)?;
        // The count first (Flask-SQLAlchemy counts after): on kv:// it loads the whole table,
        // which the page then reads, where the page first would list its rows once for itself
        // and the count list them again. One snapshot either way: the same figures.
        let total = if self.count {
            Some(select.count_matching().await?)
        } else {
            None
        };
        let mut paged = select.clone();
        // Uncounted, one row more tells whether there is a next page.
        paged.limit = Some(per_page.saturating_add(u64::from(!self.count)));
        paged.offset = Some((page - 1).saturating_mul(per_page));
        let mut rows = paged.all().await?;
        let more = rows.len() as u64 > per_page;
        if more {
            rows.truncate(usize::try_from(per_page).unwrap_or(usize::MAX));
        }
        if rows.is_empty() && page != 1 && self.error_out {
            let ask = if self.count {
                "ask for a page between 1 and the pagination's `pages`"
            } else {
                "ask for an earlier page (uncounted pages say `has_next`)"
            };
            return Err(select.not_found(format!(
                "page {page} (of {per_page} rows each) is past the last page; {ask}"
            )));
        }
        Ok(Page {
            rows,
            page,
            per_page,
            total,
            more,
            max_per_page: self.max_per_page,
        })
    }
}

/// Builder of one page of a [`Query`]: from [`Query::paginate`] or [`Query::paginate_args`];
/// `.await` it for the [`Pagination`].
///
/// The rules are Flask-SQLAlchemy 3's, with its `abort(404)` as [`Error::NotFound`]:
/// - `per_page` is first capped at `max_per_page` (if set; no cap by default);
/// - with `error_out` (the default), `page < 1`, `per_page < 1` or an argument that is not an
///   integer is an error, and so is an empty page other than page 1 (a page past the end);
///   page 1 of an empty table is an empty page, not an error;
/// - without `error_out`, such a page is 1, such a per_page the default (20), and a page past
///   the end is an empty page.
///
/// ```
/// # pollster::block_on(async {
/// # use gluebind::{model::Model, Engine, SessionFactory};
/// # #[derive(gluebind::Model)]
/// # struct Todo { #[gluebind(primary_key)] id: i64, title: String }
/// # let session = SessionFactory::builder().bind(Engine::from_url("memory://")?).build()?.open();
/// # gluebind::model::create_all(&session, &[Todo::META]).await?;
/// let page = Todo::query(&session)
///     .order_by(Todo::ID.asc())
///     .paginate_args(Some("1"), Some("500"))
///     .max_per_page(100)
///     .await?;
/// assert_eq!(page.per_page, 100);
/// # Ok::<(), gluebind::Error>(())
/// # }).unwrap();
/// ```
#[must_use = "a page is fetched only when the Paginate builder is awaited"]
pub struct Paginate<M> {
    query: Query<M>,
    request: PageRequest,
}

impl<M: Model> Paginate<M> {
    pub(crate) fn new(query: Query<M>, page: Option<i64>, per_page: Option<i64>) -> Self {
        let arg = |n: Option<i64>| n.map_or(PageArg::Missing, PageArg::Number);
        Self {
            query,
            request: PageRequest::new(arg(page), arg(per_page)),
        }
    }

    pub(crate) fn from_args(query: Query<M>, page: Option<&str>, per_page: Option<&str>) -> Self {
        Self {
            query,
            request: PageRequest::new(PageArg::parse(page), PageArg::parse(per_page)),
        }
    }

    /// The largest page size accepted: a larger `per_page` is lowered to it (not an error).
    pub fn max_per_page(mut self, max: u64) -> Self {
        self.request.max_per_page = Some(max);
        self
    }

    /// The page size when none is given, or a bad one with `error_out(false)` (default 20).
    pub fn default_per_page(mut self, per_page: u64) -> Self {
        self.request.default_per_page = per_page.max(1);
        self
    }

    /// Whether bad arguments and pages past the end are errors (default `true`) or are
    /// corrected (see [`Paginate`]).
    pub fn error_out(mut self, error_out: bool) -> Self {
        self.request.error_out = error_out;
        self
    }

    /// Whether to count the matching rows for [`Pagination::total`] (default `true`;
    /// Flask-SQLAlchemy's `count`). Without the count, `total` is `None` and
    /// [`Pagination::has_next`] comes from reading one row past the page: the page then
    /// costs what it returns. On kv:// a count lists the whole table (KV cannot count), so
    /// a first page of a large table is bounded only uncounted — or as a keyset page
    /// (`filter(Model::ID.gt(after)).order_by(..).limit(n)`).
    pub fn count(mut self, count: bool) -> Self {
        self.request.count = count;
        self
    }

    async fn fetch(self) -> Result<Pagination<M>> {
        let page = self.request.fetch(&self.query.select).await?;
        let items = page
            .rows
            .iter()
            .map(|row| M::from_row(&row))
            .collect::<Result<Vec<M>>>()?;
        Ok(Pagination::of(
            items,
            (page.page, page.per_page),
            page.total,
            page.more,
            page.max_per_page,
        ))
    }
}

impl<M: Model> std::future::IntoFuture for Paginate<M> {
    type Output = Result<Pagination<M>>;
    // Boxed: the future of an `async fn` cannot be named. Sessions are `!Send`, so no `Send`.
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Pagination<M>>>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.fetch())
    }
}

/// One page of a query's rows and where it stands (Flask-SQLAlchemy's `Pagination`).
///
/// Serializes (with serde, when the items do) as `{"items", "page", "per_page", "total",
/// "pages", "has_prev", "has_next", "prev_num", "next_num"}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Pagination<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// This page's number, from 1.
    pub page: u64,
    /// The page size (after `max_per_page`).
    pub per_page: u64,
    /// How many rows match the query, on all pages; `None` when the page was asked for
    /// uncounted ([`Paginate::count`]).
    pub total: Option<u64>,
    /// The cap on `per_page` the page was asked with.
    pub max_per_page: Option<u64>,
    /// Uncounted: whether a row follows this page.
    more: bool,
}

impl<T> Pagination<T> {
    /// A page as fetched or as given (the npm package's `Pagination`): `more` matters only
    /// uncounted.
    pub(crate) fn of(
        items: Vec<T>,
        (page, per_page): (u64, u64),
        total: Option<u64>,
        more: bool,
        max_per_page: Option<u64>,
    ) -> Self {
        Self {
            items,
            page,
            per_page,
            total,
            max_per_page,
            more,
        }
    }

    /// The number of pages (0 when there are no rows, or no page size, or the rows were not
    /// counted, as in Flask-SQLAlchemy).
    #[must_use]
    pub fn pages(&self) -> u64 {
        match self.total {
            Some(total) if self.per_page > 0 => total.div_ceil(self.per_page),
            _ => 0,
        }
    }

    /// [`Pagination::pages`] as the JSON forms give it: `None` when the rows were not counted.
    pub(crate) fn counted_pages(&self) -> Option<u64> {
        self.total.map(|_| self.pages())
    }

    /// True unless this is page 1.
    #[must_use]
    pub fn has_prev(&self) -> bool {
        self.page > 1
    }

    /// True unless this is the last page (or past it). Uncounted, true when a row follows
    /// this page (Flask-SQLAlchemy says false: it does not look).
    #[must_use]
    pub fn has_next(&self) -> bool {
        match self.total {
            Some(_) => self.page < self.pages(),
            None => self.more,
        }
    }

    /// The previous page's number, `None` on page 1.
    #[must_use]
    pub fn prev_num(&self) -> Option<u64> {
        self.has_prev().then(|| self.page - 1)
    }

    /// The next page's number, `None` on the last page.
    #[must_use]
    pub fn next_num(&self) -> Option<u64> {
        self.has_next().then(|| self.page.saturating_add(1))
    }

    /// The number (from 1) of this page's first row among all rows, 0 for an empty page.
    #[must_use]
    pub fn first(&self) -> u64 {
        if self.items.is_empty() {
            0
        } else {
            // Saturating: a `Pagination` built by hand (the npm package's) may hold any numbers.
            self.page
                .saturating_sub(1)
                .saturating_mul(self.per_page)
                .saturating_add(1)
        }
    }

    /// The number of this page's last row, 0 for an empty page.
    #[must_use]
    pub fn last(&self) -> u64 {
        match self.items.len() as u64 {
            0 => 0,
            n => self.first().saturating_add(n - 1),
        }
    }

    /// Page numbers for a pagination widget, `None` marking a gap, with Flask-SQLAlchemy's
    /// defaults (2 at each edge, 2 left and 4 right of the current page): for page 7 of 20,
    /// `1 2 … 5 6 7 8 9 10 11 … 19 20`.
    #[must_use]
    pub fn iter_pages(&self) -> Vec<Option<u64>> {
        let (left_edge, left_current, right_current, right_edge) = ITER_PAGES_DEFAULTS;
        self.iter_pages_with(left_edge, left_current, right_current, right_edge)
    }

    /// [`Pagination::iter_pages`] with the edges and the window around the current page given.
    #[must_use]
    pub fn iter_pages_with(
        &self,
        left_edge: u64,
        left_current: u64,
        right_current: u64,
        right_edge: u64,
    ) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        let pages_end = self.pages().saturating_add(1);
        if pages_end == 1 {
            return out;
        }
        let left_end = left_edge.saturating_add(1).min(pages_end);
        out.extend((1..left_end).map(Some));
        if left_end == pages_end {
            return out;
        }
        let mid_start = left_end.max(self.page.saturating_sub(left_current));
        let mid_end = self
            .page
            .saturating_add(right_current)
            .saturating_add(1)
            .min(pages_end);
        if mid_start > left_end {
            out.push(None);
        }
        out.extend((mid_start..mid_end).map(Some));
        if mid_end == pages_end {
            return out;
        }
        let right_start = mid_end.max(pages_end.saturating_sub(right_edge));
        if right_start > mid_end {
            out.push(None);
        }
        out.extend((right_start..pages_end).map(Some));
        out
    }

    /// The same page with every item converted (to a response type, say).
    pub fn map<U>(mut self, f: impl FnMut(T) -> U) -> Pagination<U> {
        let items = std::mem::take(&mut self.items);
        self.with_items(items.into_iter().map(f).collect())
    }

    /// [`Pagination::map`] with a conversion that can fail: the first error is returned.
    ///
    /// # Errors
    /// The first error of `f`.
    pub fn try_map<U, E>(mut self, f: impl FnMut(T) -> Result<U, E>) -> Result<Pagination<U>, E> {
        let items = std::mem::take(&mut self.items);
        let items = items.into_iter().map(f).collect::<Result<_, E>>()?;
        Ok(self.with_items(items))
    }

    fn with_items<U>(&self, items: Vec<U>) -> Pagination<U> {
        Pagination {
            items,
            page: self.page,
            per_page: self.per_page,
            total: self.total,
            max_per_page: self.max_per_page,
            more: self.more,
        }
    }
}

impl<T: serde::Serialize> serde::Serialize for Pagination<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Pagination", 9)?;
        out.serialize_field("items", &self.items)?;
        out.serialize_field("page", &self.page)?;
        out.serialize_field("per_page", &self.per_page)?;
        out.serialize_field("total", &self.total)?;
        out.serialize_field("pages", &self.counted_pages())?;
        out.serialize_field("has_prev", &self.has_prev())?;
        out.serialize_field("has_next", &self.has_next())?;
        out.serialize_field("prev_num", &self.prev_num())?;
        out.serialize_field("next_num", &self.next_num())?;
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flask-SQLAlchemy's `RangePagination`: `total` rows, page `page` of 10.
    fn range(total: u64, page: u64) -> Pagination<u64> {
        let first = (page - 1) * 10;
        Pagination::of(
            (first..total.min(first + 10)).collect(),
            (page, 10),
            Some(total),
            false,
            None,
        )
    }

    #[test]
    fn first_page() {
        let p = range(150, 1);
        assert_eq!(
            (p.page, p.per_page, p.total, p.pages()),
            (1, 10, Some(150), 15)
        );
        assert!(!p.has_prev());
        assert_eq!(p.prev_num(), None);
        assert!(p.has_next());
        assert_eq!(p.next_num(), Some(2));
        assert_eq!((p.first(), p.last()), (1, 10));
    }

    #[test]
    fn last_page() {
        let p = range(150, 15);
        assert!(p.has_prev());
        assert_eq!(p.prev_num(), Some(14));
        assert!(!p.has_next());
        assert_eq!(p.next_num(), None);
        assert_eq!((p.first(), p.last()), (141, 150));
        let short = range(145, 15);
        assert_eq!((short.first(), short.last()), (141, 145));
    }

    #[test]
    fn zero_pages() {
        let p = range(0, 1);
        assert_eq!(p.pages(), 0);
        assert!(!p.has_prev() && !p.has_next());
        assert_eq!((p.first(), p.last()), (0, 0));
        assert!(p.iter_pages().is_empty());
    }

    #[test]
    fn iter_pages_as_flask_sqlalchemy() {
        // Flask-SQLAlchemy's test_iter_pages table, with None as 0.
        let cases: &[(u64, &[u64])] = &[
            (1, &[1, 2, 3, 4, 5, 0, 14, 15]),
            (2, &[1, 2, 3, 4, 5, 6, 0, 14, 15]),
            (3, &[1, 2, 3, 4, 5, 6, 7, 0, 14, 15]),
            (4, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 14, 15]),
            (5, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 14, 15]),
            (6, &[1, 2, 0, 4, 5, 6, 7, 8, 9, 10, 0, 14, 15]),
            (7, &[1, 2, 0, 5, 6, 7, 8, 9, 10, 11, 0, 14, 15]),
            (8, &[1, 2, 0, 6, 7, 8, 9, 10, 11, 12, 0, 14, 15]),
            (9, &[1, 2, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
            (10, &[1, 2, 0, 8, 9, 10, 11, 12, 13, 14, 15]),
            (11, &[1, 2, 0, 9, 10, 11, 12, 13, 14, 15]),
            (12, &[1, 2, 0, 10, 11, 12, 13, 14, 15]),
            (13, &[1, 2, 0, 11, 12, 13, 14, 15]),
            (14, &[1, 2, 0, 12, 13, 14, 15]),
            (15, &[1, 2, 0, 13, 14, 15]),
        ];
        for (page, expect) in cases {
            let got: Vec<u64> = range(150, *page)
                .iter_pages()
                .into_iter()
                .map(|p| p.unwrap_or(0))
                .collect();
            assert_eq!(&got, expect, "page {page}");
        }
        for page in 1..=4 {
            assert_eq!(
                range(40, page).iter_pages(),
                vec![Some(1), Some(2), Some(3), Some(4)]
            );
        }
    }

    #[test]
    fn numbers_built_by_hand_never_panic() {
        // The npm package's `new Pagination({ … })` may hold any numbers.
        let odd = |page, per_page, total| {
            Pagination::of(vec![(); 3], (page, per_page), total, false, None)
        };
        let zero = odd(0, 0, Some(10));
        assert_eq!((zero.pages(), zero.first(), zero.prev_num()), (0, 1, None));
        assert!(zero.iter_pages().is_empty());
        let huge = odd(u64::MAX, u64::MAX, Some(u64::MAX));
        assert_eq!(huge.pages(), 1);
        assert_eq!(huge.last(), u64::MAX);
        assert_eq!(huge.iter_pages(), vec![Some(1)]);
    }

    #[test]
    fn uncounted_pages_know_only_whether_one_follows() {
        let page = |more| Pagination::of(vec![(); 10], (2, 10), None, more, None);
        let p = page(true);
        assert_eq!((p.pages(), p.has_next(), p.next_num()), (0, true, Some(3)));
        assert_eq!(
            (p.has_prev(), p.prev_num(), p.first(), p.last()),
            (true, Some(1), 11, 20)
        );
        assert!(p.iter_pages().is_empty(), "no page count: no widget");
        let last = page(false);
        assert_eq!((last.has_next(), last.next_num()), (false, None));
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json["total"], serde_json::Value::Null);
        assert_eq!(json["pages"], serde_json::Value::Null);
        assert_eq!(json["has_next"], true);
    }

    #[test]
    fn serializes_with_derived_fields() {
        let json = serde_json::to_value(range(150, 15)).unwrap();
        assert_eq!(json["pages"], 15);
        assert_eq!(json["next_num"], serde_json::Value::Null);
        assert_eq!(json["prev_num"], 14);
        assert_eq!(json["items"].as_array().unwrap().len(), 10);
    }
}
