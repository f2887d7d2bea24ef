//! Contract v1.5, "Browsers on another origin (CORS)", in a real browser:
//! a page served from a second origin (a tiny static server on another
//! port) uses the API with a bearer token, reads an `ETag` and sends it
//! back, and (realtime build) opens `/ws`; the same page on an origin that
//! is not listed is refused by the browser, and so is its socket.
//!
//! Needs Debian's `chromium` and `chromium-driver` (CI installs them);
//! elsewhere it is skipped unless `CI=true`.

mod common;

use std::net::SocketAddr;

use common::TempDir;
use common::browser::Driver;
use common::process::{register, start_server_with};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `html` at every path, from its own port: another origin.
async fn serve_page(html: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener, html)
}

fn serve_on(listener: tokio::net::TcpListener, html: String) -> SocketAddr {
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let html = html.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    address
}

/// The page: every step's outcome lands in `window.result`.
fn page(api: SocketAddr, token: &str) -> String {
    let realtime = cfg!(feature = "realtime");
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>another origin</title>
<script>
const api = 'http://{api}';
const token = '{token}';
window.result = {{ state: 'running' }};
const json = (method, path, body) => fetch(api + path, {{
  method,
  headers: {{ 'Content-Type': 'application/json', Authorization: 'Bearer ' + token }},
  body: body === undefined ? undefined : JSON.stringify(body),
}});
const socket = () => new Promise((resolve) => {{
  const ws = new WebSocket(api.replace('http', 'ws') + '/ws?token=' + token);
  ws.onopen = () => {{ ws.close(); resolve('open'); }};
  ws.onerror = () => resolve('refused');
}});
(async () => {{
  const result = {{}};
  try {{
    const me = await json('GET', '/api/me');
    result.me = (await me.json()).username;
    const drawing = await (await json('POST', '/api/drawings', {{
      title: 'From afar', width: 200, height: 100,
      strokes: [{{ id: 's1', tool: 'pen', color: '#ff0000', width: 8, points: [[10, 50], [190, 50]] }}],
    }})).json();
    const story = await json('POST', '/api/stories', {{
      title: 'Written elsewhere', genre: 'funny', age_group: '3-5', status: 'published',
      pages: [{{ text: 'A page written on another origin.', drawing_id: drawing.id }}],
    }});
    result.story = story.status;
    const image = await fetch(api + '/api/drawings/' + drawing.id + '/image.png',
      {{ headers: {{ Authorization: 'Bearer ' + token }} }});
    result.etag = image.headers.get('ETag');
    const again = await fetch(api + '/api/drawings/' + drawing.id + '/image.png',
      {{ headers: {{ Authorization: 'Bearer ' + token, 'If-None-Match': result.etag }} }});
    result.again = again.status;
    const deleted = await json('DELETE', '/api/drawings/' + drawing.id);
    result.deleted = deleted.status;
    result.state = 'done';
  }} catch (error) {{
    result.state = 'refused';
    result.error = String(error);
  }}
  result.socket = {realtime} ? await socket() : 'lean';
  window.result = result;
}})();
</script>"#
    )
}

async fn outcome(driver: &Driver, url: &str) -> Value {
    let page = driver.page().await;
    page.open(url).await;
    let result = page
        .wait_for("the page's calls", "return window.result", |v| {
            v["state"] != json!("running") && !v["socket"].is_null()
        })
        .await;
    page.close().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_a_listed_origin_uses_the_api_and_an_unlisted_one_is_refused() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    // The listed page needs its port before the server starts: a listener
    // taken first, then its page set once the API's address is known.
    let listed_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listed_origin = format!("http://{}", listed_listener.local_addr().unwrap());
    drop(listed_listener);
    let dir = TempDir::new();
    let database_url = format!("sqlite://{}", dir.0.join("cors.db").display());
    let (mut server, api) = start_server_with(
        &database_url,
        &[],
        &[("CORS_ALLOWED_ORIGINS", listed_origin.as_str())],
    );
    let token = register(api, "far_away_kid").await;

    let listed = rebind(&listed_origin, page(api, &token)).await;
    let done = outcome(&driver, &format!("http://{listed}/")).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["me"], "far_away_kid");
    assert_eq!(done["story"], 201);
    assert!(
        done["etag"].as_str().is_some_and(|e| !e.is_empty()),
        "the ETag is exposed: {done}"
    );
    assert_eq!(done["again"], 304, "{done}");
    assert_eq!(done["deleted"], 204);
    let socket = if cfg!(feature = "realtime") {
        "open"
    } else {
        "lean"
    };
    assert_eq!(done["socket"], socket, "{done}");

    let unlisted = serve_page(page(api, &token)).await;
    let refused = outcome(&driver, &format!("http://{unlisted}/")).await;
    assert_eq!(refused["state"], "refused", "{refused}");
    assert!(refused["me"].is_null(), "nothing was read: {refused}");
    let socket = if cfg!(feature = "realtime") {
        "refused"
    } else {
        "lean"
    };
    assert_eq!(refused["socket"], socket, "{refused}");

    server.kill().ok();
    server.wait().ok();
}

/// Serves `html` on the port of `origin` (taken and let go just before):
/// the page's origin must be known before the server starts.
async fn rebind(origin: &str, html: String) -> SocketAddr {
    let address: SocketAddr = origin.trim_start_matches("http://").parse().unwrap();
    serve_on(tokio::net::TcpListener::bind(address).await.unwrap(), html)
}
