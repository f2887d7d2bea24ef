-- Users imported from a Django dump (`storybook import-django`): each
-- record's model and primary key, so a second import of the same dump
-- changes nothing whatever the renames.
CREATE TABLE django_imports (
    model   TEXT   NOT NULL,
    pk      BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (model, pk)
);
