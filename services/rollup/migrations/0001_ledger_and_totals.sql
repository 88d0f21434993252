-- rollup's ledger (the latest state of every gift and donor it has been told about) and the aggregates it keeps
-- from it. Every tenant table is under row-level security; see crates/db/src/tenant.rs.

-- Tenant settings that change how totals are grouped. No row means the default: fiscal year starting in April.
CREATE TABLE tenant_settings (
    tenant_id               uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    revision                bigint NOT NULL,
    fiscal_year_start_month smallint NOT NULL CHECK (fiscal_year_start_month BETWEEN 1 AND 12)
);
ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_settings
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Donors as fundraising last described them. A deletion keeps the row (deleted, with the deletion's revision) so
-- an older upsert delivered late cannot bring the donor back.
CREATE TABLE donors (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id     uuid NOT NULL,
    revision     bigint NOT NULL,
    display_name text,
    deleted      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, donor_id)
);
ALTER TABLE donors ENABLE ROW LEVEL SECURITY;
ALTER TABLE donors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON donors
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- The gift ledger: one row per gift (refunds are gifts of their own with a negative amount and refund_of set).
-- A deletion that arrives before any upsert leaves a tombstone without details, hence the nullable columns.
CREATE TABLE gifts (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    gift_id      uuid NOT NULL,
    donor_id     uuid NOT NULL,
    revision     bigint NOT NULL,
    amount_minor bigint,
    currency     text CHECK (currency ~ '^[A-Z]{3}$'),
    gift_date    date,
    status       text CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    refund_of    uuid,
    deleted      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, gift_id),
    CHECK (deleted OR (amount_minor IS NOT NULL AND currency IS NOT NULL AND gift_date IS NOT NULL AND status IS NOT NULL))
);
CREATE INDEX gifts_donor_idx ON gifts (tenant_id, donor_id);
CREATE INDEX gifts_date_idx ON gifts (tenant_id, gift_date);
ALTER TABLE gifts ENABLE ROW LEVEL SECURITY;
ALTER TABLE gifts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gifts
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Per donor and currency: everything that does not move with the calendar. Recomputed from the ledger for the
-- donors an event touches; `rollup rebuild` recomputes it all. A donor without counted money has no row.
CREATE TABLE donor_totals (
    tenant_id          uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id           uuid NOT NULL,
    currency           text NOT NULL,
    lifetime_total     bigint NOT NULL,
    lifetime_count     bigint NOT NULL,
    largest_gift       bigint,
    smallest_gift      bigint,
    first_gift_date    date,
    first_gift_amount  bigint,
    last_gift_date     date,
    last_gift_amount   bigint,
    PRIMARY KEY (tenant_id, donor_id, currency)
);
-- Top donors: ORDER BY lifetime_total DESC within a currency.
CREATE INDEX donor_totals_top_idx ON donor_totals (tenant_id, currency, lifetime_total DESC, donor_id DESC);
ALTER TABLE donor_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE donor_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON donor_totals
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Per donor, currency and fiscal year (named by the calendar year it starts in). "This year", "last year", the
-- best year and the streak are derived from these at read time, so they never go stale as the calendar moves.
CREATE TABLE donor_fiscal_year_totals (
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id    uuid NOT NULL,
    currency    text NOT NULL,
    fiscal_year integer NOT NULL,
    total       bigint NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (tenant_id, donor_id, currency, fiscal_year)
);
ALTER TABLE donor_fiscal_year_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE donor_fiscal_year_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON donor_fiscal_year_totals
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Which tenants have anything in the ledger, readable without a tenant so `rollup rebuild` can visit each one.
-- Holds ids only.
CREATE TABLE ledger_tenants (
    tenant_id uuid PRIMARY KEY
);
