//! Keyset pagination of the list endpoints.
//!
//! A list takes `?limit=N` (1 to `PAGE_SIZE_MAX`, default `PAGE_SIZE_DEFAULT`) and
//! `?cursor=C`, where C is the opaque `X-Next-Cursor` of the previous page. A page that has a
//! successor answers with `X-Next-Cursor: C` and `Link: <URL>; rel="next"`; the last page has
//! neither. The cursor holds the sort key of the page's last item (its time and id), so pages
//! neither skip nor repeat items when items are added or deleted meanwhile.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::config::Limits;
use crate::error::ApiError;

/// The pagination part of a list's query string (strings, so errors are ours).
#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    /// Items per page.
    pub limit: Option<String>,
    /// Where the page starts.
    pub cursor: Option<String>,
}

/// A position in a list: the sort key of the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Its timestamp in microseconds since the epoch (0 for lists ordered by id only).
    pub micros: i64,
    /// Its id, as text (an integer or a UUID).
    pub id: String,
}

impl Cursor {
    /// A cursor after an item with time `at` and `id`.
    pub fn new(at: OffsetDateTime, id: impl ToString) -> Self {
        let micros = i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
        Cursor {
            micros,
            id: id.to_string(),
        }
    }

    /// The opaque text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", self.micros, self.id))
    }

    /// Reads the opaque text form; `None` for anything not made by [`Cursor::encode`].
    pub fn decode(raw: &str) -> Option<Self> {
        if raw.len() > 200 {
            return None;
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw.trim()).ok()?).ok()?;
        let rest = text.strip_prefix("v1:")?;
        let (micros, id) = rest.split_once(':')?;
        let id = id.to_owned();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return None;
        }
        Some(Cursor {
            micros: micros.parse().ok()?,
            id,
        })
    }

    /// The timestamp.
    pub fn at(&self) -> Result<OffsetDateTime, ApiError> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.micros) * 1000)
            .map_err(|_| bad_cursor())
    }

    /// The id as an integer.
    pub fn int_id(&self) -> Result<i64, ApiError> {
        self.id.parse().map_err(|_| bad_cursor())
    }

    /// The id as a UUID.
    pub fn uuid_id(&self) -> Result<uuid::Uuid, ApiError> {
        uuid::Uuid::parse_str(&self.id).map_err(|_| bad_cursor())
    }
}

fn bad_cursor() -> ApiError {
    ApiError::BadRequest(
        "cursor is not valid; pass the X-Next-Cursor of the previous page unchanged".into(),
    )
}

/// A validated page request.
#[derive(Debug, Clone)]
pub struct Page {
    /// Items wanted.
    pub limit: i64,
    /// Start after this position; `None`: from the start.
    pub after: Option<Cursor>,
}

impl Page {
    /// Checks `q` against the configured sizes.
    pub fn from_query(q: &PageQuery, limits: &Limits) -> Result<Self, ApiError> {
        let limit = match q.limit.as_deref().map(str::trim) {
            None | Some("") => limits.page_size_default,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=limits.page_size_max).contains(&n) => n,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "limit must be a whole number from 1 to {} (default {})",
                        limits.page_size_max, limits.page_size_default
                    )));
                }
            },
        };
        let after = match q.cursor.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(Cursor::decode(raw).ok_or_else(bad_cursor)?),
        };
        Ok(Page { limit, after })
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts `rows` (fetched with [`Page::fetch`]) to the page; the cursor of the next page,
    /// made from the last item kept, when more rows exist.
    pub fn split<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> Cursor,
    ) -> (Vec<T>, Option<Cursor>) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if rows.len() <= limit {
            return (rows, None);
        }
        rows.truncate(limit);
        let next = rows.last().map(key);
        (rows, next)
    }
}

/// Adds `X-Next-Cursor` and `Link: <{path}?{query}&cursor=…>; rel="next"` to `res` when there
/// is a next page. `query` holds the other parameters already encoded (may be empty).
pub fn with_next(mut res: Response, next: Option<&Cursor>, path: &str, query: &str) -> Response {
    if let Some(c) = next {
        let encoded = c.encode();
        let sep = if query.is_empty() { "" } else { "&" };
        let link = format!("<{path}?{query}{sep}cursor={encoded}>; rel=\"next\"");
        if let (Ok(cursor), Ok(link)) = (
            HeaderValue::from_str(&encoded),
            HeaderValue::from_str(&link),
        ) {
            res.headers_mut().insert("x-next-cursor", cursor);
            res.headers_mut().insert(axum::http::header::LINK, link);
        }
    }
    res
}

/// A JSON body with the next-page headers.
pub fn paged(body: impl IntoResponse, next: Option<&Cursor>, path: &str, query: &str) -> Response {
    with_next(body.into_response(), next, path, query)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor::new(
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            42,
        );
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        assert_eq!(c.int_id().unwrap(), 42);
        assert_eq!(c.at().unwrap().unix_timestamp(), 1_700_000_000);
        let u = uuid::Uuid::new_v4();
        let cu = Cursor::new(OffsetDateTime::UNIX_EPOCH, u);
        assert_eq!(Cursor::decode(&cu.encode()).unwrap().uuid_id().unwrap(), u);
        for bad in [
            "",
            "nope",
            "!!!",
            &URL_SAFE_NO_PAD.encode("v2:1:2"),
            &URL_SAFE_NO_PAD.encode("v1:x:2"),
            &URL_SAFE_NO_PAD.encode("v1:1:2' OR 1=1"),
            &URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            &"A".repeat(500),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn split_keeps_the_page_and_says_whether_more_follow() {
        let p = Page {
            limit: 2,
            after: None,
        };
        let key = |n: &i64| Cursor {
            micros: 0,
            id: n.to_string(),
        };
        let (rows, next) = p.split(vec![1, 2, 3], key);
        assert_eq!(
            (rows, next.map(|c| c.id)),
            (vec![1, 2], Some("2".to_owned()))
        );
        let (rows, next) = p.split(vec![1, 2], key);
        assert_eq!((rows, next), (vec![1, 2], None));
    }
}
