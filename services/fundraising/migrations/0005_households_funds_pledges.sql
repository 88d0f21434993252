-- Households: donors at one address giving together. Membership is a column of the donor (a donor is in at most
-- one household), so it travels on the donor's events.
CREATE TABLE households (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    revision    bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX households_tenant_idx ON households (tenant_id, id DESC);
ALTER TABLE households ENABLE ROW LEVEL SECURITY;
ALTER TABLE households FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON households
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

ALTER TABLE donors ADD COLUMN household_id uuid;
ALTER TABLE donors ADD CONSTRAINT donors_household_fk
    FOREIGN KEY (tenant_id, household_id) REFERENCES households (tenant_id, id);
CREATE INDEX donors_household_idx ON donors (tenant_id, household_id) WHERE household_id IS NOT NULL;

-- Funds money is given to. The code is unique per tenant whatever its case; an archived fund takes no new
-- allocations but keeps its history.
CREATE TABLE funds (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    revision    bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    code        text NOT NULL CHECK (length(code) BETWEEN 1 AND 50),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    restricted  boolean NOT NULL DEFAULT false,
    archived    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX funds_code_idx ON funds (tenant_id, lower(code));
CREATE INDEX funds_tenant_idx ON funds (tenant_id, id DESC);
ALTER TABLE funds ENABLE ROW LEVEL SECURITY;
ALTER TABLE funds FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON funds
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- How a gift's amount is split across funds: the parts add up to the gift's amount exactly (checked by the
-- service, which writes them with the gift). A refund entry carries its (negative) share of each fund; a zero
-- share is not stored.
CREATE TABLE gift_allocations (
    tenant_id     uuid NOT NULL DEFAULT almoner_current_tenant(),
    gift_id       uuid NOT NULL,
    fund_id       uuid NOT NULL,
    amount_minor  bigint NOT NULL CHECK (amount_minor <> 0),
    PRIMARY KEY (tenant_id, gift_id, fund_id),
    FOREIGN KEY (tenant_id, gift_id) REFERENCES gifts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, fund_id) REFERENCES funds (tenant_id, id)
);
CREATE INDEX gift_allocations_fund_idx ON gift_allocations (tenant_id, fund_id);
ALTER TABLE gift_allocations ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_allocations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_allocations
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Donors credited with (part of) a gift another donor paid. Deleting a donor removes its soft credits on gift
-- tombstones; the service refuses to delete a donor soft-credited on a live gift.
CREATE TABLE gift_soft_credits (
    tenant_id     uuid NOT NULL DEFAULT almoner_current_tenant(),
    gift_id       uuid NOT NULL,
    donor_id      uuid NOT NULL,
    amount_minor  bigint NOT NULL CHECK (amount_minor <> 0),
    kind          text NOT NULL CHECK (kind IN ('matched', 'in_memory', 'in_honour', 'solicitor')),
    PRIMARY KEY (tenant_id, gift_id, donor_id),
    FOREIGN KEY (tenant_id, gift_id) REFERENCES gifts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, donor_id) REFERENCES donors (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX gift_soft_credits_donor_idx ON gift_soft_credits (tenant_id, donor_id);
ALTER TABLE gift_soft_credits ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_soft_credits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_soft_credits
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A donor's promise to give `amount_minor` over a schedule. Not money: what pays it are the gifts that name it.
CREATE TABLE pledges (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id      uuid NOT NULL,
    revision      bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    frequency     text NOT NULL CHECK (frequency IN ('once', 'monthly', 'quarterly', 'annually')),
    instalments   integer NOT NULL CHECK (instalments >= 1),
    start_date    date NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'fulfilled', 'cancelled')),
    fund_id       uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, donor_id) REFERENCES donors (tenant_id, id),
    FOREIGN KEY (tenant_id, fund_id) REFERENCES funds (tenant_id, id),
    CHECK (frequency <> 'once' OR instalments = 1)
);
CREATE INDEX pledges_tenant_idx ON pledges (tenant_id, id DESC);
CREATE INDEX pledges_donor_idx ON pledges (tenant_id, donor_id, id DESC);
ALTER TABLE pledges ENABLE ROW LEVEL SECURITY;
ALTER TABLE pledges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pledges
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- The pledge a gift pays. A refund entry names its gift's pledge too, so the live rows naming a pledge (refunds
-- included) add up to what has been paid towards it.
ALTER TABLE gifts ADD COLUMN pledge_id uuid;
ALTER TABLE gifts ADD CONSTRAINT gifts_pledge_fk FOREIGN KEY (tenant_id, pledge_id) REFERENCES pledges (tenant_id, id);
CREATE INDEX gifts_pledge_idx ON gifts (tenant_id, pledge_id) WHERE pledge_id IS NOT NULL;
