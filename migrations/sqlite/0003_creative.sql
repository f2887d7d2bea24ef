-- Creative tools: drawings with their strokes and collaborators, the
-- drawings attached to stories, and game scores.

CREATE TABLE drawings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    background   TEXT NOT NULL,
    stroke_count INTEGER NOT NULL DEFAULT 0,
    -- Bumped by every change; part of the PNG's ETag.
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE INDEX drawings_owner ON drawings (owner_id, id DESC);

-- One row a stroke, points packed as little-endian f32 pairs (8 bytes a
-- point). `id` keeps drawing order; (drawing_id, stroke_id) makes a
-- retried append a no-op.
CREATE TABLE strokes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    drawing_id INTEGER NOT NULL REFERENCES drawings (id) ON DELETE CASCADE,
    stroke_id  TEXT NOT NULL,
    tool       TEXT NOT NULL,
    color      TEXT NOT NULL,
    width      REAL NOT NULL,
    points     BLOB NOT NULL,
    UNIQUE (drawing_id, stroke_id)
);

CREATE TABLE drawing_collaborators (
    drawing_id INTEGER NOT NULL REFERENCES drawings (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (drawing_id, user_id)
);

CREATE INDEX drawing_collaborators_user ON drawing_collaborators (user_id);

-- Which drawings a story's pages show (kept in step with the pages).
CREATE TABLE story_drawings (
    story_id   INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    drawing_id INTEGER NOT NULL REFERENCES drawings (id) ON DELETE CASCADE,
    PRIMARY KEY (story_id, drawing_id)
);

CREATE INDEX story_drawings_drawing ON story_drawings (drawing_id);

-- The best score per user, story and game kind.
CREATE TABLE game_scores (
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    story_id INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    score    INTEGER NOT NULL,
    total    INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (user_id, story_id, kind)
);

CREATE INDEX game_scores_board ON game_scores (story_id, kind, score DESC, at);
