//! The browsable API reference at `/api/v1/docs`: one HTML page rendered on the server from the
//! OpenAPI document, with no script and nothing fetched from elsewhere, so it works on a
//! supervision centre's network cut off from the internet.

use std::fmt::Write;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::openapi;

pub(crate) async fn page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        render(&openapi::document()),
    )
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The anchor of a schema in `components.schemas`.
fn schema_anchor(name: &str) -> String {
    format!("schema-{}", esc(name))
}

/// A short rendering of a schema: a link for a `$ref`, `array of` a link, or compact JSON.
fn schema_link(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#{}\">{}</a>", schema_anchor(name), esc(name));
    }
    if schema.get("type").and_then(Value::as_str) == Some("array")
        && let Some(items) = schema.get("items")
    {
        return format!("array of {}", schema_link(items));
    }
    format!("<code>{}</code>", esc(&schema.to_string()))
}

/// Pretty JSON of a schema with every `$ref` a link to the schema it names.
fn schema_body(schema: &Value) -> String {
    let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
    let mut out = String::new();
    for line in pretty.lines() {
        let escaped = esc(line);
        match line
            .trim()
            .strip_prefix("\"$ref\": \"#/components/schemas/")
        {
            Some(rest) => {
                let name = rest.trim_end_matches(',').trim_end_matches('"');
                let _ = writeln!(
                    out,
                    "{}\"$ref\": <a href=\"#{}\">{}</a>",
                    &line[..line.len() - line.trim_start().len()],
                    schema_anchor(name),
                    esc(name)
                );
            }
            None => {
                let _ = writeln!(out, "{escaped}");
            }
        }
    }
    out
}

/// The section an operation belongs to: its first path segment after `/api/v1`.
fn section(path: &str) -> &str {
    let rest = path.strip_prefix("/api/v1/").unwrap_or("service");
    let first = rest.split('/').next().unwrap_or(rest);
    if path.starts_with("/api/v1/") {
        first
    } else {
        "service"
    }
}

pub(crate) fn render(doc: &Value) -> String {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let version = doc["info"]["version"].as_str().unwrap_or("");
    let mut ops: Vec<(String, &str, &str, &Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            ops.push((section(path).to_owned(), path, method, op));
        }
    }
    ops.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sections: Vec<&str> = ops.iter().map(|o| o.0.as_str()).collect();
    sections.dedup();

    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} API reference</title><style>{STYLE}</style></head><body>\
         <header><h1>{t} API reference <small>{v}</small></h1>\
         <p>{d}</p><p>Machine-readable: <a href=\"openapi.json\">openapi.json</a> (OpenAPI 3.1).</p>\
         <nav aria-label=\"sections\">",
        t = esc(title),
        v = esc(version),
        d = esc(doc["info"]["description"].as_str().unwrap_or("")),
    );
    for s in &sections {
        let _ = write!(out, "<a href=\"#{0}\">{0}</a> ", esc(s));
    }
    out.push_str("<a href=\"#schemas\">schemas</a></nav></header><main>");
    for s in &sections {
        let _ = write!(out, "<section id=\"{0}\"><h2>{0}</h2>", esc(s));
        for (_, path, method, op) in ops.iter().filter(|o| o.0 == *s) {
            let id = format!("{method}-{path}")
                .replace(['/', '{', '}', '.'], "-")
                .to_ascii_lowercase();
            let _ = write!(
                out,
                "<article id=\"{id}\"><h3><span class=\"m {m}\">{M}</span> <code>{p}</code></h3><p>{s}</p>",
                id = esc(&id),
                m = esc(method),
                M = esc(&method.to_ascii_uppercase()),
                p = esc(path),
                s = esc(op["summary"].as_str().unwrap_or("")),
            );
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if !params.is_empty() {
                out.push_str("<table><tr><th>parameter</th><th>in</th><th>required</th></tr>");
                for p in &params {
                    let _ = write!(
                        out,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        esc(p["name"].as_str().unwrap_or("")),
                        esc(p["in"].as_str().unwrap_or("")),
                        if p["required"].as_bool() == Some(true) {
                            "yes"
                        } else {
                            "no"
                        }
                    );
                }
                out.push_str("</table>");
            }
            if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
                let _ = write!(out, "<p>Body (JSON): {}</p>", schema_link(body));
            }
            out.push_str("<p>Responses: ");
            for (code, r) in op["responses"].as_object().into_iter().flatten() {
                let _ = write!(
                    out,
                    "<code>{}</code> {} ",
                    esc(code),
                    esc(r["description"].as_str().unwrap_or(""))
                );
            }
            out.push_str("</p></article>");
        }
        out.push_str("</section>");
    }
    out.push_str("<section id=\"schemas\"><h2>schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let _ = write!(
            out,
            "<article id=\"{}\"><h3><code>{}</code></h3><pre>{}</pre></article>",
            schema_anchor(name),
            esc(name),
            schema_body(schema)
        );
    }
    out.push_str("</section></main></body></html>\n");
    out
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}\
header{background:#14324f;color:#fff;padding:1rem 2rem}header a{color:#cfe3ff}\
nav a{margin-right:.8rem}main{padding:0 2rem 4rem;max-width:70rem}\
h2{border-bottom:2px solid #14324f;margin-top:2rem}h3{margin:.2rem 0}\
article{border-bottom:1px solid #d0d7de;padding:.6rem 0}\
.m{display:inline-block;min-width:4rem;text-align:center;border-radius:3px;color:#fff;font-size:.8rem;padding:.1rem .3rem}\
.get{background:#0b6e4f}.post{background:#8a4b00}.put{background:#3b5ba5}.delete{background:#a12622}\
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left}\
pre{background:#f6f8fa;padding:.6rem;overflow:auto}code{font-family:ui-monospace,monospace}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_and_schema_is_on_the_page_and_links_resolve() {
        let doc = openapi::document();
        let html = render(&doc);
        for r in openapi::ROUTES {
            assert!(
                html.contains(&format!("<code>{}</code></h3>", esc(r.path))),
                "{} {} is missing",
                r.method,
                r.path
            );
        }
        // Every in-page link has its target.
        for link in html.split("href=\"#").skip(1) {
            let target = &link[..link.find('"').unwrap()];
            assert!(
                html.contains(&format!("id=\"{target}\"")),
                "link to #{target} has no target"
            );
        }
        // Nothing is fetched from elsewhere: the page works offline.
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
