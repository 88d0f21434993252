-- Households, funds, soft credits and pledges: the ledger columns and tables fundraising's events now carry, and
-- the aggregates recomputed from them. Every tenant table is under row-level security, as in 0001.

-- A donor's household as of its latest event. A deleted donor is in no household.
ALTER TABLE donors ADD COLUMN household_id uuid;
CREATE INDEX donors_household_idx ON donors (tenant_id, household_id) WHERE household_id IS NOT NULL;

-- The pledge a gift pays. A refund entry without one pays back into the pledge of the gift it refunds.
ALTER TABLE gifts ADD COLUMN pledge_id uuid;
CREATE INDEX gifts_pledge_idx ON gifts (tenant_id, pledge_id) WHERE pledge_id IS NOT NULL;
CREATE INDEX gifts_refund_of_idx ON gifts (tenant_id, refund_of) WHERE refund_of IS NOT NULL;

-- How each gift's amount is split across funds, as in the gift's stored revision: replaced whenever a newer
-- revision of the gift is stored. No rows: all of it is unallocated.
CREATE TABLE gift_allocations (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    gift_id      uuid NOT NULL,
    position     integer NOT NULL,
    fund_id      uuid NOT NULL,
    amount_minor bigint NOT NULL,
    PRIMARY KEY (tenant_id, gift_id, position)
);
CREATE INDEX gift_allocations_fund_idx ON gift_allocations (tenant_id, fund_id);
ALTER TABLE gift_allocations ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_allocations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_allocations
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- The donors soft-credited with each gift, as in the gift's stored revision: replaced with the gift's parts.
CREATE TABLE gift_soft_credits (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    gift_id      uuid NOT NULL,
    position     integer NOT NULL,
    donor_id     uuid NOT NULL,
    amount_minor bigint NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('matched', 'in_memory', 'in_honour', 'solicitor')),
    PRIMARY KEY (tenant_id, gift_id, position)
);
CREATE INDEX gift_soft_credits_donor_idx ON gift_soft_credits (tenant_id, donor_id);
ALTER TABLE gift_soft_credits ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_soft_credits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_soft_credits
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Households as fundraising last described them (membership travels on donors).
CREATE TABLE households (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    household_id uuid NOT NULL,
    revision     bigint NOT NULL,
    name         text NOT NULL,
    PRIMARY KEY (tenant_id, household_id)
);
ALTER TABLE households ENABLE ROW LEVEL SECURITY;
ALTER TABLE households FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON households
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Funds as fundraising last described them.
CREATE TABLE funds (
    tenant_id  uuid NOT NULL DEFAULT almoner_current_tenant(),
    fund_id    uuid NOT NULL,
    revision   bigint NOT NULL,
    code       text NOT NULL,
    name       text NOT NULL,
    restricted boolean NOT NULL,
    archived   boolean NOT NULL,
    PRIMARY KEY (tenant_id, fund_id)
);
ALTER TABLE funds ENABLE ROW LEVEL SECURITY;
ALTER TABLE funds FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON funds
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Pledges as fundraising last described them. A pledge is never money.
CREATE TABLE pledges (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    pledge_id    uuid NOT NULL,
    donor_id     uuid NOT NULL,
    revision     bigint NOT NULL,
    amount_minor bigint NOT NULL,
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    frequency    text NOT NULL CHECK (frequency IN ('once', 'monthly', 'quarterly', 'annually')),
    instalments  integer NOT NULL,
    start_date   date NOT NULL,
    status       text NOT NULL CHECK (status IN ('open', 'fulfilled', 'cancelled')),
    fund_id      uuid,
    PRIMARY KEY (tenant_id, pledge_id)
);
CREATE INDEX pledges_donor_idx ON pledges (tenant_id, donor_id);
ALTER TABLE pledges ENABLE ROW LEVEL SECURITY;
ALTER TABLE pledges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pledges
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Per household and currency, like donor_totals: the money of the gifts its members paid, each gift once, under
-- the household its paying donor is in now. Recomputed for the households an event touches.
CREATE TABLE household_totals (
    tenant_id         uuid NOT NULL DEFAULT almoner_current_tenant(),
    household_id      uuid NOT NULL,
    currency          text NOT NULL,
    lifetime_total    bigint NOT NULL,
    lifetime_count    bigint NOT NULL,
    largest_gift      bigint,
    first_gift_date   date,
    first_gift_amount bigint,
    last_gift_date    date,
    last_gift_amount  bigint,
    PRIMARY KEY (tenant_id, household_id, currency)
);
ALTER TABLE household_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE household_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON household_totals
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Per household, currency and fiscal year: this and last year are derived from these at read time.
CREATE TABLE household_fiscal_year_totals (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    household_id uuid NOT NULL,
    currency     text NOT NULL,
    fiscal_year  integer NOT NULL,
    total        bigint NOT NULL,
    count        bigint NOT NULL,
    PRIMARY KEY (tenant_id, household_id, currency, fiscal_year)
);
ALTER TABLE household_fiscal_year_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE household_fiscal_year_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON household_fiscal_year_totals
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Per fund and currency: the allocated parts of counted money, the gifts with a part in the fund and their
-- paying donors.
CREATE TABLE fund_totals (
    tenant_id  uuid NOT NULL DEFAULT almoner_current_tenant(),
    fund_id    uuid NOT NULL,
    currency   text NOT NULL,
    total      bigint NOT NULL,
    gift_count bigint NOT NULL,
    donors     bigint NOT NULL,
    PRIMARY KEY (tenant_id, fund_id, currency)
);
ALTER TABLE fund_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE fund_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON fund_totals
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Per credited donor, currency and fiscal year: the soft-credit parts of counted money (lifetime figures are the
-- sum of the years, at read time). Never part of any hard total.
CREATE TABLE donor_soft_credit_totals (
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id    uuid NOT NULL,
    currency    text NOT NULL,
    fiscal_year integer NOT NULL,
    total       bigint NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (tenant_id, donor_id, currency, fiscal_year)
);
ALTER TABLE donor_soft_credit_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE donor_soft_credit_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON donor_soft_credit_totals
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Per pledge and currency: the counted money of the gifts (and their refund entries) paying it. A donor's pledge
-- figures (open, pledged, paid, outstanding) are summed from these and the pledges at read time, in the pledge's
-- currency, so a pledge event changes no stored aggregate.
CREATE TABLE pledge_payments (
    tenant_id  uuid NOT NULL DEFAULT almoner_current_tenant(),
    pledge_id  uuid NOT NULL,
    currency   text NOT NULL,
    paid       bigint NOT NULL,
    gift_count bigint NOT NULL,
    PRIMARY KEY (tenant_id, pledge_id, currency)
);
ALTER TABLE pledge_payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE pledge_payments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pledge_payments
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
