-- Staff sign-in: magic links and the sessions they open. Only the SHA-256 of a link or refresh token is kept, so
-- a copy of the database signs nobody in. Both tokens are `<tenant id>.<random>`: the tenant part says which
-- tenant's row-level security to read them under, as an API key's id does, without a lookup table.

-- A mailed link: works once, until expires_at.
CREATE TABLE sign_in_links (
    token_sha256  bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    tenant_id     uuid NOT NULL DEFAULT almoner_current_tenant() REFERENCES tenants (id),
    staff_id      uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);
CREATE INDEX sign_in_links_staff_idx ON sign_in_links (tenant_id, staff_id);
CREATE INDEX sign_in_links_expiry_idx ON sign_in_links (expires_at);
ALTER TABLE sign_in_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE sign_in_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sign_in_links
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A signed-in browser. The refresh token rotates on every use: the current one's hash is refresh_sha256 and the
-- one it replaced is previous_sha256, so a replayed old token (stolen, or raced) is recognised and ends the
-- session. A session never outlives expires_at, however often it is refreshed.
CREATE TABLE staff_sessions (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL DEFAULT almoner_current_tenant() REFERENCES tenants (id),
    staff_id         uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    refresh_sha256   bytea NOT NULL UNIQUE CHECK (length(refresh_sha256) = 32),
    previous_sha256  bytea UNIQUE CHECK (length(previous_sha256) = 32),
    created_at       timestamptz NOT NULL DEFAULT now(),
    refreshed_at     timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    revoked_because  text CHECK (revoked_because IN ('signed_out', 'token_reused'))
);
CREATE INDEX staff_sessions_staff_idx ON staff_sessions (tenant_id, staff_id);
CREATE INDEX staff_sessions_expiry_idx ON staff_sessions (expires_at);
ALTER TABLE staff_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE staff_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON staff_sessions
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
