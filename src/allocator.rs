//! Keeping glibc's allocator from holding on to memory.
//!
//! glibc's malloc raises its mmap threshold each time a large block is
//! freed, so after the first Argon2 hash (7 MiB) every later one is carved
//! from a heap arena that is never trimmed: idle RSS doubles after two
//! logins, and each blocking thread's arena can keep its own copy. Fixed
//! thresholds stop that: large blocks are mmapped and handed back on free,
//! and few arenas are kept. glibc reads these tunables only when a process
//! starts, so the binary re-executes itself once with them set. The
//! per-thread cache and the fast bins are off as well: they keep freed
//! small blocks aside instead of merging them, which cost 1.7 MB of idle
//! memory and bought no throughput measurable here (features.md).
//! (mimalloc and jemalloc, measured as alternatives, idle higher.)

/// The tunables: blocks of 64 KiB and more are mmapped, the heap is trimmed
/// past 128 KiB free, at most two arenas exist (two cores), and freed small
/// blocks are merged at once (no tcache, no fast bins).
pub const GLIBC_TUNABLES: &str = "glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0";

/// Re-executes the current binary with [`GLIBC_TUNABLES`] unless the
/// environment already sets `GLIBC_TUNABLES` (an operator's choice, or our
/// own second start). Returns only when it did not re-execute.
pub fn tune_and_reexec() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", GLIBC_TUNABLES)
            .exec();
        // Only reached when exec failed: run untuned rather than not at all.
        eprintln!("warning: could not re-execute with malloc tunables: {error}");
    }
}
