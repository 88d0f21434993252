-- Per-tenant access to a payment provider's API (GoCardless first): its events carry ids, not amounts, so
-- fundraising fetches the payment, subscription, mandate or customer with the tenant's access token. The token is
-- sealed (XChaCha20-Poly1305 under intake.providers_secrets_key, the tenant and provider as associated data); only
-- its last four characters are kept readable, for people to tell tokens apart.
CREATE TABLE provider_connections (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    provider     text NOT NULL CHECK (provider IN ('gocardless')),
    environment  text NOT NULL CHECK (environment IN ('live', 'sandbox')),
    sealed_token bytea NOT NULL,
    token_last4  text NOT NULL CHECK (length(token_last4) BETWEEN 1 AND 4),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider)
);
ALTER TABLE provider_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON provider_connections
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A GoCardless subscription is paid through a mandate; when the mandate ends (cancelled, failed, expired) so do
-- the agreements on it, whose own events may never come.
ALTER TABLE recurring_agreements ADD COLUMN mandate_reference text;
CREATE INDEX recurring_agreements_mandate_idx ON recurring_agreements (tenant_id, provider, mandate_reference)
    WHERE mandate_reference IS NOT NULL;
