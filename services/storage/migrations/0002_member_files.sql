-- Files of the chat widget's members: who created each object (the token's subject, `member:<identifier>` or
-- `visitor:<uuid>` for a member, `staff:<id>` or `api_key:<id>` otherwise), the objects staff share with a member,
-- and the tenant's limits on members' uploads.
--
-- Objects recorded before this migration have no owner (NULL): their creator's subject is in `created_by`, but
-- owning a file is what lets a member read it, and no member uploaded before members could.

ALTER TABLE objects ADD COLUMN owner_subject text;
-- A member's own files, newest first (their listing).
CREATE INDEX objects_owner_subject_idx ON objects (tenant_id, owner_subject, created_at DESC, id DESC)
    WHERE status = 'stored' AND owner_subject IS NOT NULL;

-- The tenant's own limits on members' uploads (besides its policy); NULL keeps the service's default.
ALTER TABLE policies
    ADD COLUMN member_content_types  text[],
    ADD COLUMN member_max_size_bytes bigint CHECK (member_max_size_bytes > 0);

-- A stored object staff shared with one member; it goes with its object.
CREATE TABLE object_grants (
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    object_id   uuid NOT NULL,
    -- `member:<identifier>` or `visitor:<uuid>`, compared with the member token's subject as it is.
    subject     text NOT NULL,
    -- The token subject of the staff member (or key) who shared it.
    granted_by  text NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, object_id, subject),
    FOREIGN KEY (tenant_id, object_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
-- What was shared with one member (their listing and reads).
CREATE INDEX object_grants_subject_idx ON object_grants (tenant_id, subject, object_id);
ALTER TABLE object_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE object_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON object_grants
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
