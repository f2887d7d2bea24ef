//! Rendered PNGs kept by ETag, so a repeated render costs a lookup.
//!
//! The ETag names the drawing, its version and the output size, so an
//! entry is never stale: a change bumps the version and the old image is
//! simply not asked for again; it leaves when newer images push it out.
//! Bounded by bytes (`RENDER_CACHE_BYTES`), oldest out first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::body::Bytes;

/// A render's result.
#[derive(Debug, Clone)]
pub struct RenderedImage {
    pub png: Bytes,
    /// Whether every stroke fitted the render's work budget.
    pub complete: bool,
}

/// Bytes an entry costs beyond its image: its key, kept twice, and the
/// map's bookkeeping.
const ENTRY_OVERHEAD: usize = 128;

pub struct ImageCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    images: HashMap<String, RenderedImage>,
    /// Keys, oldest first.
    order: VecDeque<String>,
    bytes: usize,
}

fn weight(etag: &str, image: &RenderedImage) -> usize {
    ENTRY_OVERHEAD + 2 * etag.len() + image.png.len()
}

impl ImageCache {
    /// `max_bytes` 0 keeps nothing.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::default(),
        }
    }

    pub fn get(&self, etag: &str) -> Option<RenderedImage> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.images.get(etag).cloned()
    }

    /// Keeps `image` under `etag`, pushing out the oldest images until it
    /// fits; an image larger than the whole cache is not kept.
    pub fn put(&self, etag: &str, image: RenderedImage) {
        let weight = weight(etag, &image);
        if weight > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.images.contains_key(etag) {
            return;
        }
        while inner.bytes + weight > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(image) = inner.images.remove(&oldest) {
                inner.bytes -= self::weight(&oldest, &image);
            }
        }
        inner.bytes += weight;
        inner.order.push_back(etag.to_owned());
        inner.images.insert(etag.to_owned(), image);
        // A table grown in a burst and then emptied gives its space back.
        if inner.images.capacity() > 4 * inner.images.len().max(8) {
            inner.images.shrink_to_fit();
            inner.order.shrink_to_fit();
        }
    }

    /// `(images, bytes)` for `/metrics`.
    pub fn stats(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.images.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(len: usize) -> RenderedImage {
        RenderedImage {
            png: Bytes::from(vec![0u8; len]),
            complete: true,
        }
    }

    #[test]
    fn keeps_images_within_its_bytes_oldest_out_first() {
        let image = || png(1000);
        let one = weight("\"a\"", &image());
        let cache = ImageCache::new(2 * one);
        cache.put("\"a\"", image());
        cache.put("\"b\"", image());
        assert!(cache.get("\"a\"").is_some() && cache.get("\"b\"").is_some());
        cache.put("\"c\"", image());
        assert!(cache.get("\"a\"").is_none(), "the oldest went");
        assert!(cache.get("\"c\"").is_some());
        assert_eq!(cache.stats(), (2, 2 * one));
        cache.put("\"huge\"", png(3 * one));
        assert!(cache.get("\"huge\"").is_none(), "larger than the cache");
        assert_eq!(cache.stats(), (2, 2 * one));
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = ImageCache::new(0);
        cache.put("\"a\"", png(3));
        assert_eq!(cache.stats(), (0, 0));
    }
}
