-- Campaigns and their send jobs: one job per (campaign, contact), unique, made when the campaign is queued after
-- the gates (kill switch, do-not-contact list, budgets, quiet hours). The sender works through `send_queue`.

CREATE TABLE campaigns (
    tenant_id     uuid NOT NULL DEFAULT almoner_current_tenant(),
    id            uuid NOT NULL,
    revision      bigint NOT NULL DEFAULT 1,
    name          text NOT NULL,
    template_id   uuid NOT NULL,
    -- Who it goes to: {"tags": [...]} (contacts with any of them), or {} for every contact.
    audience      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(audience) = 'object'),
    -- The sender number or messaging service the provider sends from.
    sender        text NOT NULL,
    status        text NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
    -- When sending may start (the earliest; quiet hours move each job later still).
    send_at       timestamptz,
    -- The template's body as queued: later edits to the template do not change a queued campaign.
    body          text,
    -- What queueing found: jobs made, contacts left out and why, segments and estimated cost.
    queue_summary jsonb NOT NULL DEFAULT '{}',
    queued_at     timestamptz,
    completed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX campaigns_listing_idx ON campaigns (tenant_id, id DESC);
ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaigns
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

CREATE TABLE send_jobs (
    tenant_id     uuid NOT NULL DEFAULT almoner_current_tenant(),
    id            uuid NOT NULL,
    campaign_id   uuid NOT NULL,
    contact_id    uuid NOT NULL,
    phone         text NOT NULL,
    -- The whole message, rendered, opt-out line included.
    body          text NOT NULL,
    segments      integer NOT NULL CHECK (segments > 0),
    cost_micros   bigint NOT NULL CHECK (cost_micros >= 0),
    -- queued -> sending -> sent -> delivered | undelivered | failed; or blocked (the number opted out before it
    -- went), cancelled (its campaign was), or failed (the provider refused it).
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'blocked',
                                    'cancelled')),
    send_at       timestamptz NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    provider_sid  text,
    error_code    text,
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, campaign_id, contact_id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX send_jobs_campaign_idx ON send_jobs (tenant_id, campaign_id, status);
CREATE UNIQUE INDEX send_jobs_provider_sid_idx ON send_jobs (tenant_id, provider_sid) WHERE provider_sid IS NOT NULL;
ALTER TABLE send_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE send_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON send_jobs
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Jobs waiting to be sent, by time, ids only: the sender (which has no tenant until it takes a job) finds due
-- ones here, outside row-level security, with FOR UPDATE SKIP LOCKED.
CREATE TABLE send_queue (
    job_id     uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    send_at    timestamptz NOT NULL
);
CREATE INDEX send_queue_due_idx ON send_queue (send_at);
