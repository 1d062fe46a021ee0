//! Hosted pages (server-rendered HTML, no JavaScript, no external assets). Filled in by the
//! pages commit; until then no path is a page.

use crate::error::Reply;
use crate::request::RecordedRequest;
use crate::store::Store;

/// The page for `req`, `None` when the path is not one of the hosted pages.
pub(crate) fn handle(store: &mut Store, req: &RecordedRequest) -> Option<Reply> {
    let _ = (store.settings.hosted_pages, req);
    None
}
