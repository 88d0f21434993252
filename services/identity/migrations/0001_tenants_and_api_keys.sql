-- Tenants: one row per charity. A tenant sees only its own row.
CREATE TABLE tenants (
    id                      uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    fiscal_year_start_month smallint NOT NULL DEFAULT 4 CHECK (fiscal_year_start_month BETWEEN 1 AND 12),
    created_at              timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = almoner_current_tenant())
    WITH CHECK (id = almoner_current_tenant());

-- API keys: the secret is never stored, only its SHA-256 (the secret is 256 random bits, so a slow hash adds
-- nothing). Revocation is a timestamp so the key's history stays visible.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant() REFERENCES tenants (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_hash  bytea NOT NULL,
    scopes       text[] NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant_created_idx ON api_keys (tenant_id, created_at DESC, id DESC);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Which tenant a key claims to belong to, readable before the tenant is known: the token endpoint looks the
-- tenant up here, then reads the key itself under that tenant's row-level security. Holds no secret.
CREATE TABLE api_key_tenants (
    api_key_id uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL
);

-- Token signing keys (Ed25519). Not tenant data. The newest active key signs; retired keys stay published in the
-- JWKS until every token they signed has expired.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    private_key bytea NOT NULL CHECK (length(private_key) = 32),
    public_key  bytea NOT NULL CHECK (length(public_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
