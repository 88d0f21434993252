-- JustGiving: fundraising pulls each configured fundraising page's donations from JustGiving's public API (there
-- are no webhooks for donations) into the staging queue. JustGiving claims Gift Aid on them itself, so their gifts
-- must never be claimed by the charity.

-- The tenant's JustGiving application id: it is part of every API path (`/{appId}/v1/...`).
CREATE TABLE justgiving_settings (
    tenant_id  uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    app_id     text NOT NULL CHECK (app_id ~ '^[A-Za-z0-9-]{1,64}$'),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE justgiving_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE justgiving_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON justgiving_settings
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- The pages pulled, with what their gifts are attributed to and each page's pull state. A pull holds a lease
-- (`pull_lease_until`) rather than a transaction while it talks to JustGiving, so several replicas never pull one
-- page at once and a replica that dies mid-pull only delays the next one.
CREATE TABLE justgiving_pages (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL DEFAULT almoner_current_tenant(),
    short_name          text NOT NULL CHECK (short_name ~ '^(page/)?[A-Za-z0-9][A-Za-z0-9_-]{0,99}$'),
    fund                text CHECK (length(fund) BETWEEN 1 AND 100),
    campaign            text CHECK (length(campaign) BETWEEN 1 AND 100),
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- The last pull, successful or not, and why it failed (NULL once one succeeds).
    last_pulled_at      timestamptz,
    last_error          text,
    -- The highest JustGiving donation id staged or passed over: paging stops at donations already seen.
    highest_donation_id bigint,
    -- Result pages read by the last successful pull, and donations staged from the page in all.
    pages_read          integer NOT NULL DEFAULT 0,
    donations_staged    bigint NOT NULL DEFAULT 0,
    pull_lease_until    timestamptz,
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX justgiving_pages_short_name_idx ON justgiving_pages (tenant_id, lower(short_name));
CREATE INDEX justgiving_pages_list_idx ON justgiving_pages (tenant_id, id DESC);
ALTER TABLE justgiving_pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE justgiving_pages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON justgiving_pages
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A tenant with pages but no donors yet is still visited by the scheduled pull, which finds tenants in
-- known_tenants (as `fundraising replay` does).
CREATE FUNCTION remember_justgiving_tenants() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    AS $$
BEGIN
    INSERT INTO known_tenants (tenant_id) SELECT DISTINCT tenant_id FROM inserted_pages ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER justgiving_pages_remember_tenants AFTER INSERT ON justgiving_pages
    REFERENCING NEW TABLE AS inserted_pages
    FOR EACH STATEMENT EXECUTE FUNCTION remember_justgiving_tenants();

-- What a staged payment carries besides the payment: the donor's display name and message (JustGiving tells no
-- email or real name), the fund and campaign its gift is attributed to, and whether the charity may claim Gift Aid
-- on it (false: the platform claims it).
ALTER TABLE payment_staging
    ADD COLUMN payer_display_name text,
    ADD COLUMN payer_message      text,
    ADD COLUMN fund               text,
    ADD COLUMN campaign           text,
    ADD COLUMN gift_aid_claimable boolean NOT NULL DEFAULT true;

-- A gift whose Gift Aid the platform it came through claims (JustGiving): never in the charity's claims, whatever
-- the tenant's agent sources say and whatever its source is changed to.
ALTER TABLE gifts ADD COLUMN gift_aid_claimed_by_platform boolean NOT NULL DEFAULT false;
