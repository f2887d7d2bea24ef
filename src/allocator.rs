//! Keeping glibc's allocator from holding on to memory.
//!
//! glibc's malloc raises its mmap threshold each time a large block is
//! freed, so after the first Argon2 hash (7 MiB) every later one is carved
//! from a heap arena that is never trimmed: idle RSS doubles after two
//! logins, and each blocking thread's arena can keep its own copy. Fixed
//! thresholds stop that: large blocks are mmapped and handed back on free,
//! and few arenas are kept. glibc reads these tunables only when a process
//! starts, so the binary re-executes itself once with them set.
//! (mimalloc, measured as the alternative, idles at 18 MB instead of 8.)

/// The tunables: blocks of 64 KiB and more are mmapped, the heap is trimmed
/// past 128 KiB free, and at most two arenas exist (two cores).
pub const GLIBC_TUNABLES: &str =
    "glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=2";

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
