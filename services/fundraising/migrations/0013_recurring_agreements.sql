-- Recurring agreements with payment providers (a Stripe subscription and so on), kept from the provider's events.
-- `revision` grows with every change, as for every entity fundraising publishes. The donor is unknown (NULL) until
-- an event ties the provider's customer to one.
CREATE TABLE recurring_agreements (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL DEFAULT almoner_current_tenant(),
    revision           bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    donor_id           uuid,
    customer_id        text,
    amount_minor       bigint NOT NULL CHECK (amount_minor > 0),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    interval           text NOT NULL CHECK (interval IN ('weekly', 'monthly', 'quarterly', 'annually')),
    provider           text NOT NULL CHECK (length(provider) BETWEEN 1 AND 50),
    provider_reference text NOT NULL CHECK (length(provider_reference) BETWEEN 1 AND 255),
    status             text NOT NULL CHECK (status IN ('active', 'paused', 'cancelled', 'lapsed')),
    next_expected_date date,
    last_paid_date     date,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, provider, provider_reference),
    FOREIGN KEY (tenant_id, donor_id) REFERENCES donors (tenant_id, id)
);
CREATE INDEX recurring_agreements_list_idx ON recurring_agreements (tenant_id, id DESC);
CREATE INDEX recurring_agreements_due_idx ON recurring_agreements (tenant_id, next_expected_date) WHERE status = 'active';
ALTER TABLE recurring_agreements ENABLE ROW LEVEL SECURITY;
ALTER TABLE recurring_agreements FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON recurring_agreements
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Gifts paying a provider's subscription, by the subscription's reference rather than the agreement's id: a
-- payment's event may arrive before the subscription's.
CREATE TABLE recurring_payments (
    tenant_id          uuid NOT NULL DEFAULT almoner_current_tenant(),
    provider           text NOT NULL,
    provider_reference text NOT NULL,
    gift_id            uuid NOT NULL,
    paid_date          date NOT NULL,
    PRIMARY KEY (tenant_id, gift_id),
    FOREIGN KEY (tenant_id, gift_id) REFERENCES gifts (tenant_id, id)
);
CREATE INDEX recurring_payments_reference_idx ON recurring_payments (tenant_id, provider, provider_reference);
ALTER TABLE recurring_payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE recurring_payments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON recurring_payments
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A staged payment of a subscription remembers it, so approving it links the gift to the agreement.
ALTER TABLE payment_staging ADD COLUMN agreement_reference text;
