-- Conversations are listed (and paged) by (updated_at, id), newest first.
CREATE INDEX conversations_user_updated_id_idx ON conversations (user_id, updated_at DESC, id DESC);
DROP INDEX conversations_user_updated_idx;
