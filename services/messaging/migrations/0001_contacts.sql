-- messaging's first tables: the tenant's SMS settings, its contacts, the do-not-contact list, and contact imports
-- (a dry run's file and per-row outcomes, then a commit written in chunks). Every table is under row-level security
-- by tenant, as everywhere in Almoner.

-- A tenant's own settings; no row means the defaults (see src/domain/settings.rs).
CREATE TABLE settings (
    tenant_id        uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    -- ISO 3166 alpha-2 country whose local number forms (07..., 04...) imports and the API read: GB or AU.
    default_country  text NOT NULL DEFAULT 'GB' CHECK (default_country IN ('GB', 'AU')),
    revision         bigint NOT NULL DEFAULT 1,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON settings
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

CREATE TABLE contacts (
    tenant_id       uuid NOT NULL DEFAULT almoner_current_tenant(),
    id              uuid NOT NULL,
    revision        bigint NOT NULL DEFAULT 1,
    -- E.164, normalised at the edge; one contact per number per tenant.
    phone           text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    first_name      text,
    last_name       text,
    email           text,
    -- Free-form facts for templates and segments: a JSON object of strings, numbers and booleans.
    attributes      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    tags            text[] NOT NULL DEFAULT '{}',
    -- Where and when the person agreed to be texted (PECR: the charity must be able to show it).
    consent_source  text,
    consented_at    timestamptz,
    -- The fundraising donor this contact is, when linked.
    donor_id        uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, phone)
);
CREATE INDEX contacts_listing_idx ON contacts (tenant_id, id DESC);
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);
CREATE INDEX contacts_donor_idx ON contacts (tenant_id, donor_id) WHERE donor_id IS NOT NULL;
ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Numbers that must never be texted, whether or not a contact has them: STOP replies, Twilio's 21610, staff.
CREATE TABLE do_not_contact (
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    phone       text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    -- `stop_keyword` (an inbound STOP...), `provider_opt_out` (Twilio 21610), `staff`.
    reason      text NOT NULL CHECK (reason IN ('stop_keyword', 'provider_opt_out', 'staff')),
    note        text,
    added_by    text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, phone)
);
CREATE INDEX do_not_contact_listing_idx ON do_not_contact (tenant_id, added_at DESC, phone);
ALTER TABLE do_not_contact ENABLE ROW LEVEL SECURITY;
ALTER TABLE do_not_contact FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON do_not_contact
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

CREATE TABLE contact_imports (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    id           uuid NOT NULL,
    status       text NOT NULL DEFAULT 'dry_run' CHECK (status IN ('dry_run', 'committing', 'committed')),
    -- How the file is read (mapping, default country, tags, consent), as given and normalised.
    options      jsonb NOT NULL,
    rows_total   integer NOT NULL CHECK (rows_total >= 0),
    rows_done    integer NOT NULL DEFAULT 0 CHECK (rows_done >= 0 AND rows_done <= rows_total),
    -- Rows by outcome, e.g. {"create": 18, "update": 1, "invalid_number": 1}.
    summary      jsonb NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contact_imports_listing_idx ON contact_imports (tenant_id, id DESC);
-- The committer finds work across tenants by this index, through `pending_contact_imports` below.
ALTER TABLE contact_imports ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_imports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contact_imports
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- One row per line of the file (the header is line 1): the row as read (`data`, for the commit, so the file is
-- read once), what the dry run said it would do, then what the commit did.
CREATE TABLE contact_import_rows (
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    import_id   uuid NOT NULL,
    line        integer NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('create', 'update', 'unchanged', 'duplicate_in_file', 'invalid',
                                                 'invalid_number', 'do_not_contact')),
    phone       text,
    detail      text,
    data        jsonb,
    contact_id  uuid,
    PRIMARY KEY (tenant_id, import_id, line),
    FOREIGN KEY (tenant_id, import_id) REFERENCES contact_imports (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE contact_import_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_import_rows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contact_import_rows
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Imports being committed, by id and tenant only: the committer (which has no tenant until it takes one) finds
-- them here, outside row-level security, and takes each with FOR UPDATE SKIP LOCKED.
CREATE TABLE pending_contact_imports (
    import_id  uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now()
);
