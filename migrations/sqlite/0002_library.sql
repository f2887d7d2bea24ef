-- The library: stories with full-text search, likes, reads, reading
-- progress, notifications and reports.

CREATE TABLE stories (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    -- Pages as a JSON array of {"text", "drawing_id"}.
    pages        TEXT    NOT NULL,
    -- All page text joined, for search; first <= 200 chars of page one.
    body         TEXT    NOT NULL,
    excerpt      TEXT    NOT NULL,
    page_count   INTEGER NOT NULL,
    genre        TEXT    NOT NULL,
    age_group    TEXT    NOT NULL,
    -- Tags as a JSON array (as written); story_tags holds them for filtering.
    tags         TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('draft', 'published')),
    source       TEXT    NOT NULL CHECK (source IN ('manual', 'ai', 'photo')),
    likes        INTEGER NOT NULL DEFAULT 0,
    reads        INTEGER NOT NULL DEFAULT 0,
    -- Bumped when title or pages change: games are made per version.
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- When it was first published; the library's "newest" order.
    published_at INTEGER
);

CREATE INDEX stories_library_newest ON stories (status, published_at DESC, id DESC);
CREATE INDEX stories_library_popular ON stories (status, likes DESC, id DESC);
CREATE INDEX stories_library_title ON stories (status, lower(title), id);
CREATE INDEX stories_author ON stories (author_id, created_at DESC);
CREATE INDEX stories_genre ON stories (genre, status);

CREATE TABLE story_tags (
    story_id INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    -- Lowercased: the ?tag= filter is case-insensitive.
    tag      TEXT    NOT NULL,
    PRIMARY KEY (story_id, tag)
);

CREATE INDEX story_tags_tag ON story_tags (tag);

-- Full-text index over title, pages and tags; rowid = stories.id. The
-- store keeps it in step with every write of a story. Contentless: the
-- text already lives in `stories`, so the index holds no second copy.
CREATE VIRTUAL TABLE stories_fts USING fts5 (
    title, body, tags,
    content = '',
    contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TABLE likes (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    story_id   INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    -- An unlike keeps the row (active = 0) so a later like is known as a
    -- repeat and does not notify the author again.
    active     INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, story_id)
);

CREATE INDEX likes_story ON likes (story_id);

CREATE TABLE story_reads (
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    story_id INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, story_id)
);

CREATE TABLE reading_progress (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    story_id   INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    page       INTEGER NOT NULL,
    completed  INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, story_id)
);

CREATE INDEX reading_progress_recent ON reading_progress (user_id, updated_at DESC);

CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    -- JSON object; its shape depends on kind.
    data       TEXT    NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE INDEX notifications_user ON notifications (user_id, id DESC);

CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL once the story is deleted; the report stays for the record.
    story_id    INTEGER REFERENCES stories (id) ON DELETE SET NULL,
    reporter_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'dismissed')),
    action      TEXT,
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER
);

CREATE INDEX reports_status ON reports (status, id);
