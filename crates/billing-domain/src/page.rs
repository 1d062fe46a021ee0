//! Keyset ("cursor") pagination, newest first.
//!
//! A cursor names the last row of the previous page by its creation time and id, so
//! pages stay stable while rows are inserted (no offsets that shift). Cursors are opaque
//! to clients: `<unix micros>.<id>`.

use chrono::{DateTime, Utc};
use thiserror::Error;

/// Where the next page starts (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the last row seen.
    pub at: DateTime<Utc>,
    /// Id of the last row seen (ties on `at` are broken by id, descending).
    pub id: String,
}

/// A cursor that was not made by us.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cursor is not one this service issued")]
pub struct InvalidCursor;

impl Cursor {
    /// The opaque text form.
    #[must_use]
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.timestamp_micros(), self.id)
    }

    /// Parses [`Self::encode`]'s output.
    ///
    /// # Errors
    /// [`InvalidCursor`] for anything else.
    pub fn decode(s: &str) -> Result<Self, InvalidCursor> {
        let (micros, id) = s.split_once('.').ok_or(InvalidCursor)?;
        let micros: i64 = micros.parse().map_err(|_| InvalidCursor)?;
        let at = DateTime::from_timestamp_micros(micros).ok_or(InvalidCursor)?;
        if id.is_empty() || id.len() > 255 || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(InvalidCursor);
        }
        Ok(Self {
            at,
            id: id.to_owned(),
        })
    }
}

/// Page size: 1 to [`PageLimit::MAX`], default [`PageLimit::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u16);

/// A page size outside the allowed range.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("limit must be between 1 and {}", PageLimit::MAX)]
pub struct InvalidLimit;

impl PageLimit {
    /// Largest page.
    pub const MAX: u16 = 100;
    /// Default page.
    pub const DEFAULT: u16 = 20;

    /// Validates a page size.
    ///
    /// # Errors
    /// [`InvalidLimit`] outside 1..=100.
    pub fn new(n: i64) -> Result<Self, InvalidLimit> {
        match u16::try_from(n) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(InvalidLimit),
        }
    }

    /// The size.
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// Which page to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this row.
    pub after: Option<Cursor>,
    /// Page size.
    pub limit: PageLimit,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows, newest first.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows read newest first: the extra row only
    /// tells that another page exists. `key` gives a row's cursor.
    #[must_use]
    pub fn from_overfetch(mut rows: Vec<T>, limit: PageLimit, key: impl Fn(&T) -> Cursor) -> Self {
        let limit = usize::from(limit.get());
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(key)
        } else {
            None
        };
        Self { items: rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_text_form() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: "evt_1.2".into(),
        };

        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for bad in ["", "abc", "12", "x.y", "1.", "1.a b"] {
            assert_eq!(Cursor::decode(bad), Err(InvalidCursor), "{bad}");
        }
    }

    #[test]
    fn the_extra_row_means_there_is_a_next_page() {
        let limit = PageLimit::new(2).unwrap();
        let key = |n: &i64| Cursor {
            at: DateTime::from_timestamp(*n, 0).unwrap(),
            id: n.to_string(),
        };

        let full = Page::from_overfetch(vec![3, 2, 1], limit, key);
        let last = Page::from_overfetch(vec![3, 2], limit, key);

        assert_eq!(full.items, [3, 2]);
        assert_eq!(full.next.unwrap().id, "2");
        assert_eq!(last.next, None);
    }

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        assert!(PageLimit::new(0).is_err());
        assert!(PageLimit::new(101).is_err());
        assert_eq!(PageLimit::new(100).unwrap().get(), 100);
    }
}
