//! Sampling a process's resident memory from `/proc/PID/status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// `(VmRSS, VmHWM)` in KiB: current and peak resident set.
pub fn read(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The processes `pid` started (its children and theirs), from
/// `/proc/PID/task/*/children`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut pending = vec![pid];
    while let Some(parent) = pending.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                pending.push(child);
            }
        }
    }
    found
}

/// Samples a figure in the background; keeps the highest value seen and
/// every sample (bounded: one per interval, at most 100,000).
pub struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<u64>>,
}

impl Sampler {
    /// A process's RSS.
    pub fn start(pid: u32, every: Duration) -> Self {
        Self::watch(every, move || read(pid).map(|(rss, _)| rss))
    }

    /// The highest peak RSS (`VmHWM`) any child process of `pid` (Tesseract,
    /// curl, the photo preparation) has reached, read while the children
    /// live, every 5 ms: a child shorter than that may be missed.
    pub fn children_peak(pid: u32) -> Self {
        Self::watch(Duration::from_millis(5), move || {
            descendants(pid)
                .into_iter()
                .filter_map(|child| read(child).map(|(_, hwm)| hwm))
                .max()
        })
    }

    fn watch(every: Duration, probe: impl Fn() -> Option<u64> + Send + 'static) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (task_peak, task_stop) = (peak.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !task_stop.load(Ordering::Relaxed) {
                if let Some(value) = probe() {
                    task_peak.fetch_max(value, Ordering::Relaxed);
                    if samples.len() < 100_000 {
                        samples.push(value);
                    }
                }
                tokio::time::sleep(every).await;
            }
            samples
        });
        Self { peak, stop, task }
    }

    /// The highest value seen (0 if none) and the samples.
    pub async fn finish(self) -> (u64, Vec<u64>) {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.task.await.unwrap_or_default();
        (self.peak.load(Ordering::Relaxed), samples)
    }
}

#[derive(Debug, clap::Args)]
pub struct RssArgs {
    /// The server's process id.
    #[arg(long)]
    pub pid: u32,
}

pub async fn run(args: RssArgs) -> Result<(), String> {
    let (rss, hwm) = read(args.pid).ok_or("no such process")?;
    println!(
        "{}",
        serde_json::json!({ "pid": args.pid, "rss_kib": rss, "peak_rss_kib": hwm })
    );
    Ok(())
}

/// Resets the peak RSS (`VmHWM`) of a process, so the next peak read is
/// the peak of what happens from now on (Linux: `clear_refs` value 5).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// A process's CPU time (user + system) in seconds, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}
