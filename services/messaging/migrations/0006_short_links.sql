-- Short links: each URL of each message becomes /l/<code>, a code per (job, URL) so a click names its contact.
-- `short_links` is read without a tenant (a click carries nothing but the code), so it holds ids and the target
-- only; clicks are the tenant's.

CREATE TABLE short_links (
    code         text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z]{10}$'),
    tenant_id    uuid NOT NULL,
    campaign_id  uuid NOT NULL,
    job_id       uuid NOT NULL,
    contact_id   uuid NOT NULL,
    url          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX short_links_campaign_idx ON short_links (tenant_id, campaign_id);

CREATE TABLE link_clicks (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    id           uuid NOT NULL,
    code         text NOT NULL,
    campaign_id  uuid NOT NULL,
    contact_id   uuid NOT NULL,
    clicked_at   timestamptz NOT NULL DEFAULT now(),
    user_agent   text,
    -- A link-preview bot or a prefetch, not a person: kept, not counted as a human click.
    bot          boolean NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX link_clicks_campaign_idx ON link_clicks (tenant_id, campaign_id, bot);
ALTER TABLE link_clicks ENABLE ROW LEVEL SECURITY;
ALTER TABLE link_clicks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON link_clicks
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
