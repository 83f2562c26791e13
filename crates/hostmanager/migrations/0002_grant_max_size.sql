-- An upload grant may carry a size limit (executable archives), enforced by
-- the fileserver while it receives the body; NULL means the fileserver's own.
ALTER TABLE file_grant ADD COLUMN max_size INTEGER;
