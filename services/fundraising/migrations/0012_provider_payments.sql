-- Payments from providers (Stripe first), consumed from webhook-ingest's events on the queue fundraising.payments.
-- Every table here is a tenant's, under row-level security like the rest of the schema.

-- Provider events already handled, by the provider's own event id: webhook-ingest publishes a replay under a new
-- envelope id, so the envelope id alone (processed_events) cannot catch it.
CREATE TABLE provider_events (
    tenant_id  uuid NOT NULL DEFAULT almoner_current_tenant(),
    provider   text NOT NULL CHECK (length(provider) BETWEEN 1 AND 50),
    event_id   text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider, event_id)
);
ALTER TABLE provider_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON provider_events
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Which donor a provider's customer is: the first thing a payment is matched by. Not one of the donor's
-- external_ids (those are the donor's state, carried by its events); a link made by matching is fundraising's
-- bookkeeping. It goes with its donor.
CREATE TABLE payment_customers (
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    provider    text NOT NULL CHECK (length(provider) BETWEEN 1 AND 50),
    customer_id text NOT NULL CHECK (length(customer_id) BETWEEN 1 AND 255),
    donor_id    uuid NOT NULL,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider, customer_id),
    FOREIGN KEY (tenant_id, donor_id) REFERENCES donors (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX payment_customers_donor_idx ON payment_customers (tenant_id, donor_id);
ALTER TABLE payment_customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_customers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payment_customers
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Payments whose donor is unsure (several donors share the email, no email, no last name for a new donor), kept
-- for a person to approve (with a donor) or reject. One entry per provider payment, whatever the events repeat.
CREATE TABLE payment_staging (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL DEFAULT almoner_current_tenant(),
    provider            text NOT NULL CHECK (length(provider) BETWEEN 1 AND 50),
    reference           text NOT NULL CHECK (length(reference) BETWEEN 1 AND 255),
    provider_event_id   text NOT NULL,
    amount_minor        bigint NOT NULL CHECK (amount_minor > 0),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    gift_date           date NOT NULL,
    payment_method      text,
    customer_id         text,
    email               text,
    first_name          text,
    last_name           text,
    reason              text NOT NULL CHECK (reason IN ('several_donors_match', 'no_email', 'no_last_name')),
    candidate_donor_ids uuid[] NOT NULL DEFAULT '{}',
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    donor_id            uuid,
    gift_id             uuid,
    rejection_reason    text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    decided_at          timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, provider, reference)
);
CREATE INDEX payment_staging_list_idx ON payment_staging (tenant_id, id DESC);
ALTER TABLE payment_staging ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_staging FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payment_staging
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A refund that arrived before its payment became a gift (the payment's event is late, or the payment is staged):
-- what the provider says is refunded in all, applied when the gift is recorded.
CREATE TABLE parked_refunds (
    tenant_id          uuid NOT NULL DEFAULT almoner_current_tenant(),
    provider           text NOT NULL CHECK (length(provider) BETWEEN 1 AND 50),
    payment_reference  text NOT NULL CHECK (length(payment_reference) BETWEEN 1 AND 255),
    refunded_total     bigint NOT NULL CHECK (refunded_total > 0),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    refund_date        date NOT NULL,
    parked_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider, payment_reference)
);
ALTER TABLE parked_refunds ENABLE ROW LEVEL SECURITY;
ALTER TABLE parked_refunds FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON parked_refunds
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
