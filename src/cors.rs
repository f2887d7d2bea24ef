//! Browsers on another origin (contract v1.5, "Browsers on another origin
//! (CORS)"): on `/api/` only, for the exact origins of
//! `CORS_ALLOWED_ORIGINS`, never with credentials (tokens travel in
//! `Authorization`; there are no cookies).
//!
//! Our own small layer rather than tower-http's `CorsLayer`: read from its
//! 0.7 source, that layer answers every preflight `200` and sends
//! `Access-Control-Allow-Methods` and `-Headers` whatever the origin,
//! where the contract asks `204` and no `Access-Control-Allow-*` header
//! for an origin that is not listed. It sits outside every other layer
//! but the trace, so a preflight is answered before authentication,
//! throttles, admission and the concurrency limit (and counts against
//! none of them), and every answer, errors and panics included, carries
//! the headers.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origins allowed to call `/api/` from a browser: exact
/// `scheme://host[:port]` strings, lower-cased.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Arc<[String]>);

impl AllowedOrigins {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `origin` (an `Origin` header's value) is one of them.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        self.0
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

impl FromStr for AllowedOrigins {
    type Err = String;

    /// Comma-separated origins; empty is none. `*`, a path, a query or
    /// anything that is not `http(s)://host[:port]` is refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(parse_origin)
            .collect::<Result<Vec<_>, _>>()
            .map(|origins| Self(origins.into()))
    }
}

/// One origin, checked and lower-cased.
fn parse_origin(item: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        Err(format!(
            "{item:?} {why} (an origin is scheme://host[:port])"
        ))
    };
    if item.contains('*') {
        return refuse("is a wildcard: list each origin exactly");
    }
    let Some((scheme, authority)) = item.split_once("://") else {
        return refuse("has no scheme");
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return refuse("is not http or https");
    }
    if authority.contains(['/', '?', '#']) {
        return refuse("has a path (leave out even a trailing slash)");
    }
    if authority.contains('@') {
        return refuse("has user information");
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal's colons are inside its brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    if !host_ok {
        return refuse("has no valid host");
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return refuse("has no valid port");
    }
    Ok(item.to_ascii_lowercase())
}

const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE");
const ALLOW_HEADERS: HeaderValue =
    HeaderValue::from_static("Authorization, Content-Type, If-None-Match");
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");
const EXPOSE_HEADERS: HeaderValue =
    HeaderValue::from_static("ETag, Retry-After, Render-Incomplete, Content-Disposition");

/// The layer: answers preflights for `/api/` and adds the headers to
/// every `/api/` answer.
pub async fn cors(State(origins): State<AllowedOrigins>, request: Request, next: Next) -> Response {
    if origins.is_empty() || !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let listed = origin.filter(|origin| origins.allows(origin));
    let preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = listed {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        }
        return response;
    }
    let mut response = next.run(request).await;
    mark(response.headers_mut(), listed);
    response
}

/// An actual (not preflight) answer's headers.
fn mark(headers: &mut HeaderMap, listed: Option<HeaderValue>) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = listed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    }
}

/// Whether a WebSocket handshake's `Origin` may open a socket: no `Origin`
/// (not a browser), a listed one, or the server's own (the `Origin`'s
/// host and port are the `Host` header's).
pub fn socket_origin_allowed(origins: &AllowedOrigins, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if origins.allows(origin) {
        return true;
    }
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(HeaderValue::to_str),
    ) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return false,
    };
    let without_default = |text: &'_ str| -> String {
        text.strip_suffix(default_port)
            .unwrap_or(text)
            .to_ascii_lowercase()
    };
    without_default(authority) == without_default(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_exact_and_anything_else_is_refused() {
        let origins: AllowedOrigins = " https://App.example.org , http://localhost:5173,"
            .parse()
            .unwrap();
        assert!(origins.allows(&HeaderValue::from_static("https://app.example.org")));
        assert!(origins.allows(&HeaderValue::from_static("http://localhost:5173")));
        assert!(!origins.allows(&HeaderValue::from_static("http://app.example.org")));
        assert!(!origins.allows(&HeaderValue::from_static("https://app.example.org.evil")));
        assert!(!origins.allows(&HeaderValue::from_static("null")));
        assert!("".parse::<AllowedOrigins>().unwrap().is_empty());
        assert!("http://[::1]:8080".parse::<AllowedOrigins>().is_ok());
        for bad in [
            "*",
            "https://*.example.org",
            "app.example.org",
            "https://app.example.org/",
            "https://app.example.org/path",
            "ftp://app.example.org",
            "https://user@app.example.org",
            "https://app.example.org:99999",
            "https://app example.org",
            "https://",
        ] {
            let error = bad.parse::<AllowedOrigins>().unwrap_err();
            assert!(error.contains("scheme://host[:port]"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_socket_opens_from_a_listed_origin_or_the_servers_own() {
        let origins: AllowedOrigins = "https://app.example.org".parse().unwrap();
        let headers = |origin: Option<&'static str>, host: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static(host));
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
            }
            headers
        };
        let allowed = |origin, host| socket_origin_allowed(&origins, &headers(origin, host));
        assert!(allowed(None, "api.example.org"), "no Origin: not a browser");
        assert!(allowed(Some("https://app.example.org"), "api.example.org"));
        assert!(allowed(Some("https://api.example.org"), "api.example.org"));
        assert!(allowed(
            Some("https://api.example.org"),
            "api.example.org:443"
        ));
        assert!(allowed(Some("http://127.0.0.1:8000"), "127.0.0.1:8000"));
        assert!(!allowed(Some("http://127.0.0.1:9000"), "127.0.0.1:8000"));
        assert!(!allowed(Some("https://evil.example"), "api.example.org"));
        assert!(!allowed(Some("null"), "api.example.org"));
    }
}
