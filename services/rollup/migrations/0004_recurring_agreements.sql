-- Recurring agreements (standing orders with a payment provider) as fundraising last described them. Never money:
-- the payments they bring are gifts. Monthly values are derived at read time (`domain::recurring`), so nothing here
-- is an aggregate and `rollup rebuild` has nothing of them to recompute.
CREATE TABLE recurring_agreements (
    tenant_id          uuid NOT NULL DEFAULT almoner_current_tenant(),
    agreement_id       uuid NOT NULL,
    -- Unknown until the provider's customer is tied to a donor: counts for the tenant, for no donor.
    donor_id           uuid,
    revision           bigint NOT NULL,
    amount_minor       bigint NOT NULL,
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    interval           text NOT NULL CHECK (interval IN ('weekly', 'monthly', 'quarterly', 'annually')),
    status             text NOT NULL CHECK (status IN ('active', 'paused', 'cancelled', 'lapsed')),
    next_expected_date date,
    last_paid_date     date,
    provider           text NOT NULL,
    provider_reference text NOT NULL,
    PRIMARY KEY (tenant_id, agreement_id)
);
CREATE INDEX recurring_agreements_donor_idx ON recurring_agreements (tenant_id, donor_id) WHERE donor_id IS NOT NULL;
ALTER TABLE recurring_agreements ENABLE ROW LEVEL SECURITY;
ALTER TABLE recurring_agreements FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON recurring_agreements
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
