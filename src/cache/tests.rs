use super::*;

/// The ticket of a fresh cache.
const START: Ticket = Ticket {
    generation: 0,
    tick: 0,
};

fn page(n: usize) -> Cached {
    Cached::Library(Arc::new(Page {
        items: Vec::new(),
        total: n as i64,
    }))
}

#[test]
fn bounded_by_entries_and_bytes() {
    let cache = ReadCache::new(3, 1 << 20, Duration::from_secs(60));
    for i in 0..10 {
        cache.put(START, CacheKey::Library(i.to_string()), page(i));
    }
    assert_eq!(cache.stats().0, 3);
    assert!(cache.get(START, &CacheKey::Library("9".into())).is_some());
    assert!(cache.get(START, &CacheKey::Library("0".into())).is_none());

    let small = ReadCache::new(100, 600, Duration::from_secs(60));
    for i in 0..10 {
        small.put(START, CacheKey::Library(i.to_string()), page(i));
    }
    assert!(small.stats().1 <= 600);
}

#[test]
fn a_write_hides_everything_read_before_it() {
    let cache = ReadCache::new(10, 1 << 20, Duration::from_secs(60));
    let before = cache.generation();
    cache.put(before, CacheKey::Library("a".into()), page(1));
    cache.invalidate_all();
    assert!(
        cache
            .get(cache.generation(), &CacheKey::Library("a".into()))
            .is_none()
    );
    // A read that began before the write cannot store its stale result.
    cache.put(before, CacheKey::Library("b".into()), page(1));
    assert!(cache.get(before, &CacheKey::Library("b".into())).is_none());
}

#[test]
fn narrow_invalidations_drop_only_their_entries() {
    let cache = ReadCache::new(10, 1 << 20, Duration::from_secs(60));
    let before = cache.generation();
    for id in [1, 2] {
        cache.put(before, CacheKey::Story(id), page(1));
        cache.put(before, CacheKey::StoryBody(id), page(1));
    }
    cache.put(before, CacheKey::Library("p1".into()), page(1));
    cache.invalidate_story(1);
    let now = cache.generation();
    assert!(cache.get(now, &CacheKey::Story(1)).is_none());
    assert!(cache.get(now, &CacheKey::StoryBody(1)).is_none());
    assert!(
        cache.get(now, &CacheKey::Story(2)).is_some(),
        "another story stays"
    );
    assert!(
        cache.get(now, &CacheKey::Library("p1".into())).is_some(),
        "a read count keeps pages"
    );
    // A reader that started before the invalidation cannot store story 1…
    cache.put(before, CacheKey::Story(1), page(1));
    assert!(cache.get(now, &CacheKey::Story(1)).is_none());
    // …but may store story 3, and a later reader story 1.
    cache.put(before, CacheKey::Story(3), page(1));
    assert!(cache.get(now, &CacheKey::Story(3)).is_some());
    cache.put(now, CacheKey::Story(1), page(1));
    assert!(cache.get(now, &CacheKey::Story(1)).is_some());

    cache.invalidate_library();
    assert!(
        cache
            .get(cache.generation(), &CacheKey::Library("p1".into()))
            .is_none()
    );
    assert!(cache.get(cache.generation(), &CacheKey::Story(2)).is_some());
    cache.put(now, CacheKey::Library("p2".into()), page(1));
    assert!(
        cache
            .get(cache.generation(), &CacheKey::Library("p2".into()))
            .is_none()
    );
}

#[test]
fn a_reader_older_than_every_remembered_invalidation_stores_nothing() {
    let cache = ReadCache::new(10, 1 << 20, Duration::from_secs(60));
    let before = cache.generation();
    for id in 0..(INVALIDATIONS_REMEMBERED as i64 + 5) {
        cache.invalidate_story(id + 1000);
    }
    cache.put(before, CacheKey::Story(1), page(1));
    assert!(cache.get(cache.generation(), &CacheKey::Story(1)).is_none());
    assert!(cache.inner.lock().unwrap().story_invalidations.len() <= INVALIDATIONS_REMEMBERED);
}

#[test]
fn invalidations_leave_no_places_behind_in_the_age_order() {
    let cache = ReadCache::new(10, 1 << 20, Duration::from_secs(60));
    for _ in 0..1000 {
        cache.put(cache.generation(), CacheKey::Story(1), page(1));
        cache.put(cache.generation(), CacheKey::Library("p".into()), page(1));
        cache.invalidate_story(1);
        cache.invalidate_library();
    }
    let inner = cache.inner.lock().unwrap();
    assert_eq!(
        (inner.entries.len(), inner.order.len(), inner.bytes),
        (0, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn entries_expire() {
    let cache = ReadCache::new(10, 1 << 20, Duration::from_secs(30));
    cache.put(START, CacheKey::Story(1), page(1));
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(cache.get(START, &CacheKey::Story(1)).is_some(), "not yet");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(cache.get(START, &CacheKey::Story(1)).is_none());
    let (_, _, hits, misses) = cache.stats();
    assert_eq!((hits, misses), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn purging_frees_expired_entries_and_their_table() {
    let cache = ReadCache::new(1000, 1 << 20, Duration::from_secs(30));
    for i in 0..500 {
        cache.put(START, CacheKey::Story(i), page(1));
    }
    let grown = cache.inner.lock().unwrap().entries.capacity();
    cache.purge_expired();
    assert_eq!(cache.stats().0, 500, "nothing has expired yet");
    tokio::time::advance(Duration::from_secs(31)).await;
    cache.put(START, CacheKey::Story(1000), page(1));
    cache.purge_expired();
    assert_eq!(cache.stats().0, 1, "only the fresh entry stays");
    assert!(cache.stats().1 < 1000, "its bytes alone are counted");
    let inner = cache.inner.lock().unwrap();
    assert!(inner.entries.capacity() < grown / 4, "the table shrank");
    assert_eq!(inner.order.len(), 1);
    drop(inner);
    assert!(cache.get(START, &CacheKey::Story(1000)).is_some());

    // Entries of an older generation go at once.
    cache.invalidate_all();
    cache.purge_expired();
    assert_eq!(cache.stats().0, 0);
    assert_eq!(
        cache.inner.lock().unwrap().entries.capacity(),
        0,
        "an empty cache owns no table"
    );
}
