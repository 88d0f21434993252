-- Tenant settings travel as state-carrying events (identity.tenant.updated.v1): each change bumps the revision.
ALTER TABLE tenants
    ADD COLUMN revision   bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
