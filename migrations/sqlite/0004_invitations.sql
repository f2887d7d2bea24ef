-- Who has ever been invited to a drawing. Removing a collaborator keeps
-- the row, so inviting them again does not notify them again (removing
-- and re-adding was a way to send someone any number of notifications).
-- Existing collaborators count as invited.
CREATE TABLE drawing_invitations (
    drawing_id INTEGER NOT NULL REFERENCES drawings (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (drawing_id, user_id)
);

INSERT INTO drawing_invitations (drawing_id, user_id)
SELECT drawing_id, user_id FROM drawing_collaborators;
