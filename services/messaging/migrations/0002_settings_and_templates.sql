-- The tenant's sending rules (the opt-out line, the HELP answer, quiet hours, budgets, the price per segment
-- spend is counted at, the kill switch) and its message templates.

ALTER TABLE settings
    ADD COLUMN opt_out_text   text NOT NULL DEFAULT 'Reply STOP to opt out',
    ADD COLUMN help_text      text NOT NULL DEFAULT 'Reply STOP to opt out of our texts.',
    -- Quiet hours in the tenant's time zone: no message is sent from quiet_start until quiet_end (across
    -- midnight when quiet_start > quiet_end). Equal times mean no quiet hours.
    ADD COLUMN quiet_start    time NOT NULL DEFAULT '21:00',
    ADD COLUMN quiet_end      time NOT NULL DEFAULT '09:00',
    -- identity's tenant time zone, kept from its events (IANA name).
    ADD COLUMN time_zone      text NOT NULL DEFAULT 'Europe/London',
    ADD COLUMN identity_revision bigint NOT NULL DEFAULT 0,
    -- Spend limits in micro-units of `budget_currency` (1,000,000 = one dollar), counted from each message's
    -- segments at price_per_segment_micros; and optional limits in segments.
    ADD COLUMN budget_currency          text NOT NULL DEFAULT 'USD' CHECK (budget_currency ~ '^[A-Z]{3}$'),
    ADD COLUMN daily_budget_micros      bigint NOT NULL DEFAULT 100000000 CHECK (daily_budget_micros >= 0),
    ADD COLUMN monthly_budget_micros    bigint NOT NULL DEFAULT 2000000000 CHECK (monthly_budget_micros >= 0),
    ADD COLUMN daily_segment_limit      integer CHECK (daily_segment_limit >= 0),
    ADD COLUMN monthly_segment_limit    integer CHECK (monthly_segment_limit >= 0),
    ADD COLUMN price_per_segment_micros bigint NOT NULL DEFAULT 40000 CHECK (price_per_segment_micros >= 0),
    -- The kill switch: while paused, nothing is sent and nothing new is queued.
    ADD COLUMN paused         boolean NOT NULL DEFAULT false,
    ADD COLUMN paused_at      timestamptz,
    ADD COLUMN paused_by      text;

CREATE TABLE templates (
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    id          uuid NOT NULL,
    revision    bigint NOT NULL DEFAULT 1,
    name        text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX templates_name_idx ON templates (tenant_id, lower(name));
CREATE INDEX templates_listing_idx ON templates (tenant_id, id DESC);
ALTER TABLE templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON templates
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
