-- webhook-ingest: tenants' endpoints and their secrets, the deliveries received and the provider events in them,
-- and an audit of refused deliveries.

-- A tenant's endpoint: where one provider sends webhooks (`/webhooks/<provider>/<id>`).
CREATE TABLE endpoints (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    provider    text NOT NULL CHECK (provider IN ('stripe', 'gocardless', 'paypal', 'twilio', 'standard')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);
CREATE INDEX endpoints_tenant_created_idx ON endpoints (tenant_id, created_at DESC, id DESC);
ALTER TABLE endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON endpoints
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Which tenant an endpoint belongs to, for a delivery that carries no token. No row-level security, like the outbox:
-- receiving reads it in no tenant to learn the tenant, then does everything else in that tenant's transaction. It
-- holds no secret and nothing a tenant wrote but the provider; it is written with the endpoint, never changed.
CREATE TABLE endpoint_directory (
    endpoint_id uuid PRIMARY KEY REFERENCES endpoints (id),
    tenant_id   uuid NOT NULL,
    provider    text NOT NULL
);

-- An endpoint's signing secrets (PayPal: its credentials as JSON), sealed with XChaCha20-Poly1305 under
-- `webhooks.secrets_key`, the endpoint id as associated data. Active while `expires_at` is null or in the future; a
-- rotation gives the old secret an `expires_at` (its grace period), so at most two are active.
CREATE TABLE endpoint_secrets (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    endpoint_id uuid NOT NULL REFERENCES endpoints (id),
    sealed      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);
CREATE INDEX endpoint_secrets_endpoint_idx ON endpoint_secrets (endpoint_id, created_at DESC);
ALTER TABLE endpoint_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE endpoint_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON endpoint_secrets
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- One verified HTTP request, as received: the raw bytes and headers.
CREATE TABLE deliveries (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    endpoint_id uuid NOT NULL REFERENCES endpoints (id),
    provider    text NOT NULL,
    headers     jsonb NOT NULL,
    body        bytea NOT NULL,
    received_at timestamptz NOT NULL
);
ALTER TABLE deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON deliveries
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- One provider event of a delivery (a GoCardless delivery holds several). Unique on (endpoint, provider, event id):
-- a duplicate is neither stored nor published again.
CREATE TABLE received_events (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    endpoint_id uuid NOT NULL REFERENCES endpoints (id),
    provider    text NOT NULL,
    event_id    text NOT NULL,
    event_type  text,
    delivery_id uuid NOT NULL REFERENCES deliveries (id),
    body        jsonb NOT NULL,
    test        boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL,
    UNIQUE (endpoint_id, provider, event_id)
);
CREATE INDEX received_events_tenant_received_idx ON received_events (tenant_id, received_at DESC, id DESC);
ALTER TABLE received_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE received_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON received_events
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Refused deliveries, for operators: never the body (it may be forged, or hold what was not meant for us). No
-- row-level security: a refusal at an unknown endpoint has no tenant.
CREATE TABLE refusals (
    id          uuid PRIMARY KEY,
    provider    text NOT NULL,
    endpoint_id uuid,
    tenant_id   uuid,
    reason      text NOT NULL,
    status      integer NOT NULL,
    headers     jsonb NOT NULL,
    refused_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refusals_refused_at_idx ON refusals (refused_at);
