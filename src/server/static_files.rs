//! The browser dashboard (`dashboard/` in the repository), embedded at compile time and
//! served at `/dashboard/…`; `/` redirects there. Only the files listed here exist, so a
//! path can name nothing else (no traversal, no file system access at run time).
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

pub const PREFIX: &str = "/dashboard/";

/// `(name, content type, bytes)` of every embedded file.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../dashboard/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/app.js"),
    ),
    (
        "client.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/client.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../dashboard/style.css"),
    ),
];

/// The embedded file for a request path under [`PREFIX`] (`/dashboard/` is `index.html`).
pub fn lookup(path: &str) -> Option<(&'static str, &'static [u8])> {
    let name = path.strip_prefix(PREFIX)?;
    let name = if name.is_empty() { "index.html" } else { name };
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, ct, body)| (*ct, *body))
}

/// `GET /`: a redirect to the dashboard, keeping the query (`?token=` in local demo mode).
pub fn redirect_root(query: Option<&str>) -> Response<Full<Bytes>> {
    let location = match query {
        Some(q) if !q.is_empty() => format!("{PREFIX}?{q}"),
        _ => PREFIX.to_string(),
    };
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Whether [`serve`] answers this path: `/`, `/dashboard` and everything under [`PREFIX`].
pub fn is_dashboard(path: &str) -> bool {
    path == "/" || path == "/dashboard" || path.starts_with(PREFIX)
}

/// `/` and `/dashboard` redirect to [`PREFIX`]; an embedded file is served; any other
/// path under [`PREFIX`] is a 404.
pub fn serve(path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    if path == "/" || path == "/dashboard" {
        return redirect_root(query);
    }
    let Some((content_type, body)) = lookup(path) else {
        let mut r = Response::new(Full::new(Bytes::from(
            serde_json::json!({"error": "not_found", "message": format!("no dashboard file {path}")})
                .to_string(),
        )));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return r;
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_embedded_files_with_types() {
        assert_eq!(lookup("/dashboard/").unwrap().0, "text/html; charset=utf-8");
        assert_eq!(
            lookup("/dashboard/app.js").unwrap().0,
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            lookup("/dashboard/style.css").unwrap().0,
            "text/css; charset=utf-8"
        );
        assert!(!lookup("/dashboard/index.html").unwrap().1.is_empty());
    }

    #[test]
    fn unknown_and_traversal_paths_are_not_found() {
        for p in [
            "/dashboard/nope.js",
            "/dashboard/../Cargo.toml",
            "/dashboard/%2e%2e/Cargo.toml",
            "/dashboard//app.js",
            "/dashboardapp.js",
            "/other/app.js",
        ] {
            assert!(lookup(p).is_none(), "{p}");
            if is_dashboard(p) {
                assert_eq!(serve(p, None).status(), StatusCode::NOT_FOUND, "{p}");
            }
        }
    }

    #[test]
    fn root_redirect_keeps_query() {
        let r = redirect_root(Some("token=abc"));
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()[header::LOCATION], "/dashboard/?token=abc");
        assert_eq!(
            redirect_root(None).headers()[header::LOCATION],
            "/dashboard/"
        );
        assert_eq!(serve("/dashboard", None).status(), StatusCode::FOUND);
        assert_eq!(serve("/dashboard/app.js", None).status(), StatusCode::OK);
    }
}
