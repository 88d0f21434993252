-- Donors as fundraising last described them (from its state-carrying events), so contacts can be linked to them
-- and segments can ask about their giving; SMS consent kept in step both ways; and saved segments.

-- One row per donor, at the newest revision seen; a deleted donor stays as a tombstone so an older upsert that
-- arrives late cannot bring it back.
CREATE TABLE donors (
    tenant_id        uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id         uuid NOT NULL,
    revision         bigint NOT NULL,
    deleted          boolean NOT NULL DEFAULT false,
    -- E.164, as fundraising holds it.
    phone            text,
    -- Lower case.
    email            text,
    first_name       text,
    last_name        text,
    sms_consent      boolean NOT NULL DEFAULT false,
    -- When the donor's SMS consent last took the value `sms_consent` (fundraising's `updated_at` of that revision,
    -- or the time messaging sent fundraising a contact's): the newer of this and a linked contact's
    -- `consent_changed_at` wins when the two disagree.
    sms_changed_at   timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, donor_id)
);
CREATE INDEX donors_phone_idx ON donors (tenant_id, phone) WHERE NOT deleted AND phone IS NOT NULL;
CREATE INDEX donors_email_idx ON donors (tenant_id, email) WHERE NOT deleted AND email IS NOT NULL;
ALTER TABLE donors ENABLE ROW LEVEL SECURITY;
ALTER TABLE donors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON donors
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Each gift as fundraising last described it: what segments' giving facts are counted from.
CREATE TABLE donor_gifts (
    tenant_id     uuid NOT NULL DEFAULT almoner_current_tenant(),
    gift_id       uuid NOT NULL,
    donor_id      uuid NOT NULL,
    revision      bigint NOT NULL,
    deleted       boolean NOT NULL DEFAULT false,
    -- Minor units; a refund entry is negative.
    amount_minor  bigint NOT NULL,
    gift_date     date NOT NULL,
    -- pending, succeeded, failed, refunded.
    status        text NOT NULL,
    PRIMARY KEY (tenant_id, gift_id)
);
CREATE INDEX donor_gifts_donor_idx ON donor_gifts (tenant_id, donor_id, gift_date) WHERE NOT deleted;
ALTER TABLE donor_gifts ENABLE ROW LEVEL SECURITY;
ALTER TABLE donor_gifts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON donor_gifts
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A contact's consent is `consented_at IS NOT NULL`. When it last changed either way, and when it was last
-- withdrawn, are kept by the trigger below whatever writes the row (the API, an import, a STOP reply, a donor).
ALTER TABLE contacts
    ADD COLUMN consent_changed_at   timestamptz,
    ADD COLUMN consent_withdrawn_at timestamptz,
    -- How the donor link was made: `phone`, then `email` (each only when exactly one donor matches).
    ADD COLUMN donor_link           text CHECK (donor_link IN ('phone', 'email'));
UPDATE contacts SET consent_changed_at = consented_at WHERE consented_at IS NOT NULL;
CREATE INDEX contacts_email_idx ON contacts (tenant_id, lower(email)) WHERE email IS NOT NULL;

CREATE FUNCTION contacts_consent_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.consented_at IS NOT NULL THEN
            NEW.consent_changed_at := coalesce(NEW.consent_changed_at, now());
        END IF;
    ELSIF (OLD.consented_at IS NULL) <> (NEW.consented_at IS NULL) THEN
        NEW.consent_changed_at := now();
        IF NEW.consented_at IS NULL THEN
            NEW.consent_withdrawn_at := now();
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER contacts_consent_changed BEFORE INSERT OR UPDATE OF consented_at ON contacts
    FOR EACH ROW EXECUTE FUNCTION contacts_consent_changed();

-- A saved filter over contacts, counted live.
CREATE TABLE segments (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    id           uuid NOT NULL,
    revision     bigint NOT NULL DEFAULT 1,
    name         text NOT NULL,
    description  text,
    -- A `SegmentFilter` (src/domain/segment.rs), as normalised when saved.
    filter       jsonb NOT NULL CHECK (jsonb_typeof(filter) = 'object'),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX segments_name_idx ON segments (tenant_id, lower(name));
ALTER TABLE segments ENABLE ROW LEVEL SECURITY;
ALTER TABLE segments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON segments
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
