//! The web client: one self-contained HTML page (`web/client.html`, its
//! CSS and JavaScript inline, nothing loaded from elsewhere), compiled into
//! the library and served on `GET /` of a WebSocket listener.

use std::sync::Arc;

/// The page as written, with the placeholder `PATH_PLACEHOLDER` where the
/// WebSocket path goes.
pub const CLIENT_PAGE: &str = include_str!("../../../web/client.html");

/// Stands in the page for the WebSocket path it connects back to.
pub const PATH_PLACEHOLDER: &str = "%WS_PATH%";

/// The page with `path` filled in. The path was checked to be visible
/// ASCII; it is escaped for the HTML attribute it lands in all the same.
pub fn render(path: &str) -> Arc<[u8]> {
    let mut escaped = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    Arc::from(CLIENT_PAGE.replacen(PATH_PLACEHOLDER, &escaped, 1).into_bytes())
}
