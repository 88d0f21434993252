-- Files now live in the storage service (S3-compatible object storage), not in PostgreSQL.
--
-- A claim's schedule file is an object in storage (`object_id`), with its size and the SHA-256 fundraising computed
-- of the bytes it wrote (checked against storage's own when stored). Files exported before keep their bytes in
-- `content` until first downloaded by a caller allowed to store files (`storage:write`): that download moves them to
-- storage, records the object and clears `content`, in one transaction. A row always has one or the other.
ALTER TABLE gift_aid_claim_files
    ADD COLUMN object_id uuid,
    -- Set with the object; rows still holding their bytes are measured from them.
    ADD COLUMN size_bytes bigint CHECK (size_bytes >= 0),
    ALTER COLUMN content DROP NOT NULL,
    ADD CONSTRAINT gift_aid_claim_files_kept CHECK (content IS NOT NULL OR (object_id IS NOT NULL AND size_bytes IS NOT NULL));

-- An import may name the CSV a client uploaded to storage instead of sending it in the body. The import keeps its
-- own copy in `content` all the same: its commit runs later, in the background, without the caller's token, and
-- resumes after a restart, so it never reads storage. `object_id` records where the file came from.
ALTER TABLE imports ADD COLUMN object_id uuid;
