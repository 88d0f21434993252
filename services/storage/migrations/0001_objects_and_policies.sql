-- storage's records: every object (an upload waiting for its file, or a stored file), each tenant's policy and
-- the space it uses, and the queue of uploads to abandon. The bytes themselves are in the S3 bucket, under
-- `tenants/<tenant>/objects/<object>`; see src/store.rs.

CREATE TABLE objects (
    tenant_id        uuid NOT NULL DEFAULT almoner_current_tenant(),
    id               uuid NOT NULL,
    revision         bigint NOT NULL DEFAULT 1,
    -- `pending`: the upload exists, its file may or may not be in the bucket yet; `stored`: checked and kept.
    status           text NOT NULL CHECK (status IN ('pending', 'stored')),
    filename         text NOT NULL,
    content_type     text NOT NULL,
    -- As declared for a pending upload; as stored once it is.
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    sha256           bytea CHECK (sha256 IS NULL OR length(sha256) = 32),
    purpose          text NOT NULL,
    owner_reference  text,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Until when the presigned upload link works (pending only).
    upload_expires_at timestamptz,
    stored_at        timestamptz,
    PRIMARY KEY (tenant_id, id),
    CHECK (status = 'pending' OR (sha256 IS NOT NULL AND stored_at IS NOT NULL))
);
CREATE INDEX objects_listing_idx ON objects (tenant_id, created_at DESC, id DESC) WHERE status = 'stored';
CREATE INDEX objects_owner_idx ON objects (tenant_id, purpose, owner_reference) WHERE status = 'stored';
ALTER TABLE objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE objects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON objects
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A tenant's own settings; a NULL column (or no row) means the service's default.
CREATE TABLE policies (
    tenant_id              uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    allowed_content_types  text[],
    max_size_bytes         bigint CHECK (max_size_bytes > 0),
    quota_bytes            bigint CHECK (quota_bytes >= 0),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON policies
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- The bytes a tenant's objects take, stored and reserved by uploads under way, kept by the same transactions that
-- add and remove objects; its row lock is what makes two uploads racing for the last of a quota take turns.
CREATE TABLE usage (
    tenant_id  uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    used_bytes bigint NOT NULL CHECK (used_bytes >= 0)
);
ALTER TABLE usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- When each pending upload is abandoned. Ids only, no tenant data, and outside row-level security so that the
-- clean-up (in no tenant) finds them; the deletion itself runs in the upload's tenant.
CREATE TABLE upload_deadlines (
    tenant_id    uuid NOT NULL,
    object_id    uuid NOT NULL,
    abandon_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, object_id)
);
CREATE INDEX upload_deadlines_due_idx ON upload_deadlines (abandon_at);
