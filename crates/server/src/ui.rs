//! The web UI: the built front end (`ui/dist`, made by `npm --prefix ui run build`) served from
//! a directory at run time, so that building the service never needs npm.
//!
//! Everything outside `/api/` and the service's own routes is the UI's: files under
//! `/assets/` are served as they are (their names carry a content hash, so they are cached for
//! a year), and every other path is one of the UI's client-side routes and gets `index.html`.
//! These paths need no credential (the UI signs in through `/api/v1/session`) and are not
//! routes of the permission matrix: the router's fallback answers them.
//!
//! A path can never leave the directory: an asset's name is one segment of letters, digits,
//! `.`, `-` and `_`, not starting with a dot.

use std::path::{Path, PathBuf};

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where the built UI is and how it is set up.
#[derive(Clone, Debug, Default)]
pub struct UiConfig {
    /// The built UI (`index.html` and `assets/`); `None` serves no UI.
    pub dir: Option<PathBuf>,
    /// A raster tile server (`https://tile.example/{z}/{x}/{y}.png`) drawn under the map, for
    /// sites that are online; without one the map is the bundled Natural Earth outline.
    pub tile_url: Option<String>,
}

/// The built UI of the source tree this was compiled from (`ui/dist`): the default when
/// nothing is configured.
pub fn default_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/dist"))
}

/// The prefix of the UI's hashed files.
pub const ASSETS: &str = "/assets/";

/// Whether a path is the UI's (not the API's, nor one of the service's own routes).
pub(crate) fn is_ui_path(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/api")
}

/// Answers a GET (or HEAD) of a UI path.
pub(crate) async fn serve(config: &UiConfig, method: &Method, path: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return crate::Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method: the web UI's pages are read with GET",
        )
        .into_response();
    }
    let Some(dir) = config.dir.clone() else {
        return not_built(None);
    };
    if let Some(name) = path.strip_prefix(ASSETS) {
        let Some(name) = asset_name(name) else {
            return crate::Problem::new(StatusCode::NOT_FOUND, "path: no such file of the web UI")
                .into_response();
        };
        let file = dir.join("assets").join(name);
        return match read(file).await {
            Some(bytes) => (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(content_type(name)),
                    ),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=31536000, immutable"),
                    ),
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                ],
                bytes,
            )
                .into_response(),
            None => crate::Problem::new(StatusCode::NOT_FOUND, "path: no such file of the web UI")
                .into_response(),
        };
    }
    match read(dir.join("index.html")).await {
        Some(bytes) => {
            let html = String::from_utf8_lossy(&bytes);
            let html = match &config.tile_url {
                Some(url) => html.replacen(
                    "</head>",
                    &format!(
                        "<meta name=\"sealwatch-tile-url\" content=\"{}\"></head>",
                        escape(url)
                    ),
                    1,
                ),
                None => html.into_owned(),
            };
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    ),
                    // The page names the current hashed files: always asked again.
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                ],
                html,
            )
                .into_response()
        }
        None => not_built(Some(&dir)),
    }
}

/// An asset's file name, when it is one safe segment.
fn asset_name(name: &str) -> Option<&str> {
    let safe = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    safe.then_some(name)
}

async fn read(file: PathBuf) -> Option<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&file).ok()?;
        if !meta.is_file() {
            return None;
        }
        std::fs::read(&file).ok()
    })
    .await
    .ok()
    .flatten()
}

fn content_type(name: &str) -> &'static str {
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        Some("map") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What to do when the UI is not built: said on the page, with the command.
fn not_built(dir: Option<&Path>) -> Response {
    let where_ = dir.map_or_else(
        || "no directory is configured (ui.dir)".to_owned(),
        |d| format!("{} has no index.html", escape(&d.display().to_string())),
    );
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sealwatch: the \
         UI is not built</title></head><body style=\"font-family:sans-serif;max-width:40em;\
         margin:3em auto\"><h1>The web UI is not built</h1><p>{where_}.</p><p>Build it from the \
         repository, then reload this page:</p><pre>npm --prefix ui ci &amp;&amp; npm --prefix \
         ui run build</pre><p>The API works without it: <a href=\"/api/v1/docs\">/api/v1/docs</a>.\
         </p></body></html>"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_stay_in_the_directory() {
        assert_eq!(asset_name("index-AbC_1.js"), Some("index-AbC_1.js"));
        for bad in [
            "",
            "..",
            "../index.html",
            "..%2f..%2fetc%2fpasswd",
            "a/b.js",
            ".env",
            "a\\b",
            "/etc/passwd",
        ] {
            assert_eq!(asset_name(bad), None, "{bad}");
        }
    }
}
