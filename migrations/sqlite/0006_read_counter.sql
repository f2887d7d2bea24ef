-- A first read bumps the story's counter in the same statement that
-- records it, so counting a read is one statement instead of a
-- transaction of three (issue #14: on a 0.1 CPU plan each statement is a
-- round trip to the database thread, and reads are the hottest write).
CREATE TRIGGER story_reads_count AFTER INSERT ON story_reads
BEGIN
    UPDATE stories SET reads = reads + 1 WHERE id = NEW.story_id;
END;
