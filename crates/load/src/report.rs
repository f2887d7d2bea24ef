//! Latency statistics and the run's report: one JSON document per run and
//! a human summary.

use serde_json::{Value, json};

/// Percentiles of latencies given in microseconds, in milliseconds.
pub fn latency_summary(mut micros: Vec<u32>) -> Value {
    if micros.is_empty() {
        return json!({ "p50": null, "p90": null, "p99": null, "max": null });
    }
    micros.sort_unstable();
    let at = |q: f64| {
        let index = ((micros.len() as f64 - 1.0) * q).round() as usize;
        f64::from(micros[index]) / 1000.0
    };
    json!({ "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": at(1.0) })
}

/// Writes the JSON document (when a path is given) and prints a summary.
pub fn publish(report: &Value, out: Option<&std::path::Path>) -> Result<(), String> {
    if let Some(path) = out {
        let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    println!(
        "{}",
        serde_json::to_string(report).map_err(|e| e.to_string())?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let summary = latency_summary((1..=1000).collect());
        assert_eq!(summary["p50"], 0.501);
        assert_eq!(summary["p99"], 0.99);
        assert_eq!(summary["max"], 1.0);
        assert!(latency_summary(Vec::new())["p50"].is_null());
    }
}
