-- The tenant's Twilio account (its auth token sealed with sms.secrets_key, bound to the tenant), and when each
-- job was handed to the sender.

CREATE TABLE provider_accounts (
    tenant_id            uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    account_sid          text NOT NULL CHECK (account_sid ~ '^AC[0-9a-f]{32}$'),
    auth_token_sealed    bytea NOT NULL,
    -- Where Twilio posts status callbacks: the tenant's webhook-ingest Twilio endpoint, as Twilio reaches it.
    status_callback_url  text,
    revision             bigint NOT NULL DEFAULT 1,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE provider_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON provider_accounts
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

ALTER TABLE send_jobs ADD COLUMN sending_at timestamptz;
CREATE INDEX send_queue_tenant_due_idx ON send_queue (tenant_id, send_at);
