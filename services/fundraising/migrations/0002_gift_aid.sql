-- Gift Aid declarations: a donor's permission to claim tax back on their gifts, per HMRC's rules (see
-- docs/gift-aid.md). A declaration covers gifts dated from start_date (at most 4 years before declared_on) to
-- end_date if it has ended. Oral declarations count once their written record has been sent and the 30 days the
-- donor has to cancel have passed; a cancellation within them voids the declaration from the start.
CREATE TABLE gift_aid_declarations (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id             uuid NOT NULL,
    revision             bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    method               text NOT NULL CHECK (method IN ('online', 'written', 'oral')),
    declared_on          date NOT NULL,
    start_date           date NOT NULL,
    end_date             date,
    end_reason           text CHECK (end_reason IN ('donor_request', 'insufficient_tax', 'deceased', 'superseded', 'other')),
    declaration_text     text NOT NULL CHECK (length(declaration_text) BETWEEN 1 AND 4000),
    confirmation_sent_on date,
    cancelled_on         date,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, donor_id) REFERENCES donors (tenant_id, id) ON DELETE CASCADE,
    CHECK (start_date >= (declared_on - interval '4 years')::date),
    CHECK (end_date IS NULL OR end_date >= start_date),
    CHECK (end_reason IS NULL OR end_date IS NOT NULL),
    CHECK (method = 'oral' OR (confirmation_sent_on IS NULL AND cancelled_on IS NULL)),
    CHECK (cancelled_on IS NULL OR (confirmation_sent_on IS NOT NULL
        AND cancelled_on BETWEEN confirmation_sent_on AND confirmation_sent_on + 30))
);
CREATE INDEX gift_aid_declarations_donor_idx ON gift_aid_declarations (tenant_id, donor_id, start_date);
ALTER TABLE gift_aid_declarations ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_aid_declarations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_aid_declarations
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- A tenant's Gift Aid settings; a tenant without a row has the defaults.
CREATE TABLE gift_aid_settings (
    tenant_id     uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    -- Gift sources whose platform claims Gift Aid itself (lower case).
    agent_sources text[] NOT NULL DEFAULT '{justgiving}',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE gift_aid_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_aid_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_aid_settings
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());
