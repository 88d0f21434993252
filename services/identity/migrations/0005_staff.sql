-- Staff: the people of a charity who sign in to the console, each with one role. A role is a set of the scopes
-- every service already enforces (src/domain/role.rs), so what a person may do is decided by the services, not
-- hidden by the page. Addresses are kept in lower case and are unique within a tenant.
CREATE TABLE staff (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant() REFERENCES tenants (id),
    email       text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role        text NOT NULL CHECK (role IN ('admin', 'fundraiser', 'messenger', 'viewer')),
    invited_by  text NOT NULL,
    revision    bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX staff_email_idx ON staff (tenant_id, email);
CREATE INDEX staff_created_idx ON staff (tenant_id, created_at DESC, id DESC);
ALTER TABLE staff ENABLE ROW LEVEL SECURITY;
ALTER TABLE staff FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON staff
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Which tenants an address is staff of, readable before the tenant is known (sign-in starts from an address
-- alone): by the SHA-256 of the lower-case address, never the address itself, as api_key_tenants holds ids only.
CREATE TABLE staff_addresses (
    staff_id      uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    email_sha256  bytea NOT NULL CHECK (length(email_sha256) = 32)
);
CREATE INDEX staff_addresses_email_idx ON staff_addresses (email_sha256);
