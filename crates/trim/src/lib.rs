//! Returning freed heap memory to the operating system.
//!
//! glibc keeps what was freed inside its heaps and only gives back the top
//! of each one, so after thousands of WebSocket connections close, a live
//! allocation left high in the heap pins everything below it: RSS stays at
//! the peak. `malloc_trim(0)` walks every arena and hands free pages back
//! with `madvise`. The server calls this from a blocking thread every few
//! seconds (`MALLOC_TRIM_SECS`).

/// Releases free heap pages; returns whether glibc gave anything back.
/// A no-op (returning false) where the C library is not glibc.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes a padding size and touches only the
        // allocator's own free lists under its own locks; it has no
        // preconditions on the caller and does not invalidate live memory.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released != 0
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn freed_memory_can_be_released() {
        let blocks: Vec<Vec<u8>> = (0..2_000).map(|i| vec![i as u8; 1_000]).collect();
        let keep = blocks.last().cloned();
        drop(blocks);
        // Whether anything comes back depends on the heap; it must not fail.
        let _ = super::release_free_memory();
        assert_eq!(keep.map(|b| b.len()), Some(1_000));
    }
}
