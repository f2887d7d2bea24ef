//! Contract v1.5, "Deploying": the two Render blueprints, read as Render
//! reads them, so that they cannot rot: `render.yaml` costs nothing (the
//! lean build on the free plan, a free PostgreSQL, nothing else);
//! `render-realtime.yaml` is the realtime build on a paid plan with Key
//! Value (reachable from no address outside) and PostgreSQL. Every
//! setting they give is one the server reads, and the proxies they trust
//! are those requests pass through, never Cloudflare Workers' network.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use axum::http::HeaderMap;
use storybook::client_addr::TrustedProxies;
use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn blueprint(name: &str) -> Yaml {
    let text = std::fs::read_to_string(Path::new(ROOT).join(name)).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .remove(0)
}

fn list(yaml: &Yaml) -> &[Yaml] {
    yaml.as_vec().map(Vec::as_slice).unwrap_or_default()
}

fn text<'y>(yaml: &'y Yaml, key: &str) -> &'y str {
    yaml[key].as_str().unwrap_or_default()
}

/// The settings the server reads: every `NAME=` of `.env.example`, the
/// optional ones (`# NAME=`) included.
fn known_settings() -> BTreeSet<String> {
    std::fs::read_to_string(Path::new(ROOT).join(".env.example"))
        .unwrap()
        .lines()
        .map(|line| line.trim_start_matches("# "))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.to_owned()))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect()
}

/// Checks what every web service of a blueprint must have; returns it.
fn web_service<'y>(blueprint: &'y Yaml, name: &str) -> &'y Yaml {
    let services = list(&blueprint["services"]);
    let web: Vec<&Yaml> = services
        .iter()
        .filter(|s| text(s, "type") == "web")
        .collect();
    assert_eq!(web.len(), 1, "{name}: one web service (one build a push)");
    let service = web[0];
    assert_eq!(
        text(service, "runtime"),
        "docker",
        "{name}: Tesseract needs the image"
    );
    assert_eq!(text(service, "healthCheckPath"), "/healthz");
    assert_eq!(text(service, "dockerfilePath"), "./Dockerfile");
    let settings = known_settings();
    let databases: Vec<&str> = list(&blueprint["databases"])
        .iter()
        .map(|d| text(d, "name"))
        .collect();
    for variable in list(&service["envVars"]) {
        let key = text(variable, "key");
        assert!(
            key == "FEATURES" || settings.contains(key),
            "{name}: {key} is no setting of the server (.env.example)"
        );
        if let Some(database) = variable["fromDatabase"]["name"].as_str() {
            assert!(
                databases.contains(&database),
                "{name}: no database {database}"
            );
        }
    }
    let variable = |key: &str| {
        list(&service["envVars"])
            .iter()
            .find(|v| text(v, "key") == key)
            .unwrap_or_else(|| panic!("{name} sets {key}"))
    };
    assert_eq!(
        text(&variable("DATABASE_URL")["fromDatabase"], "property"),
        "connectionString"
    );
    assert!(variable("CORS_ALLOWED_ORIGINS")["sync"] == Yaml::Boolean(false));
    // The proxies: Render's own, then Cloudflare's edge; a request from
    // Cloudflare Workers' network is its own client, whatever it forwards.
    let proxies: TrustedProxies = text(variable("TRUSTED_PROXIES"), "value").parse().unwrap();
    let client = |chain: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", chain.parse().unwrap());
        proxies.client_of("10.1.2.3".parse().unwrap(), &headers)
    };
    assert_eq!(
        client("198.51.100.7, 104.16.0.1"),
        "198.51.100.7".parse::<IpAddr>().unwrap(),
        "{name}: the client behind Cloudflare and Render"
    );
    assert_eq!(
        client("198.51.100.7, 2a06:98c0::1"),
        "2a06:98c0::1".parse::<IpAddr>().unwrap(),
        "{name}: a Worker's made-up X-Forwarded-For is not believed"
    );
    for path in list(&service["buildFilter"]["paths"]) {
        let path = path.as_str().unwrap().trim_end_matches("/**");
        assert!(
            Path::new(ROOT).join(path).exists(),
            "{name}: buildFilter {path}"
        );
    }
    service
}

#[test]
fn the_free_blueprint_costs_nothing() {
    let free = blueprint("render.yaml");
    for kind in ["services", "databases"] {
        for item in list(&free[kind]) {
            assert_eq!(
                text(item, "plan"),
                "free",
                "{} is on a paid plan",
                text(item, "name")
            );
        }
    }
    assert_eq!(list(&free["databases"]).len(), 1);
    assert_eq!(
        list(&free["services"]).len(),
        1,
        "the lean web service only"
    );
    let service = web_service(&free, "render.yaml");
    assert!(
        list(&service["envVars"])
            .iter()
            .all(|v| text(v, "key") != "FEATURES" && text(v, "key") != "REDIS_URL"),
        "the lean build, no Key Value"
    );
}

#[test]
fn the_realtime_blueprint_is_the_realtime_build_with_key_value() {
    let paid = blueprint("render-realtime.yaml");
    let service = web_service(&paid, "render-realtime.yaml");
    assert_eq!(text(service, "plan"), "starter");
    let env = list(&service["envVars"]);
    let features = env.iter().find(|v| text(v, "key") == "FEATURES").unwrap();
    assert_eq!(text(features, "value"), "realtime");
    let redis = env.iter().find(|v| text(v, "key") == "REDIS_URL").unwrap();
    let key_value_name = text(&redis["fromService"], "name");
    assert_eq!(text(&redis["fromService"], "type"), "keyvalue");
    let key_value = list(&paid["services"])
        .iter()
        .find(|s| text(s, "type") == "keyvalue" && text(s, "name") == key_value_name)
        .expect("the Key Value the service names");
    assert_eq!(
        key_value["ipAllowList"],
        Yaml::Array(Vec::new()),
        "Key Value reachable from no address outside"
    );
    assert_eq!(text(key_value, "maxmemoryPolicy"), "noeviction");
    for database in list(&paid["databases"]) {
        assert_ne!(
            text(database, "plan"),
            "free",
            "a free database expires in 30 days"
        );
    }
}
