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
    -- Donations up to this amount (pence) are aggregated in the HMRC schedule; 0 aggregates none. HMRC allows
    -- at most £20.
    aggregate_up_to_minor bigint NOT NULL DEFAULT 2000 CHECK (aggregate_up_to_minor BETWEEN 0 AND 2000),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE gift_aid_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_aid_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_aid_settings
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Claims: a batch of eligible gifts sent to HMRC together. `draft` while under review (gifts may be removed, or the
-- whole draft discarded), then `submitted`, then `paid` or `partly_rejected` once HMRC has answered.
CREATE TABLE gift_aid_claims (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL DEFAULT almoner_current_tenant(),
    revision        bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'submitted', 'paid', 'partly_rejected')),
    -- Gifts dated on or before this day were gathered.
    up_to           date NOT NULL,
    hmrc_reference  text CHECK (length(hmrc_reference) BETWEEN 1 AND 100),
    created_at      timestamptz NOT NULL DEFAULT now(),
    submitted_at    timestamptz,
    answered_on     date,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    CHECK ((status = 'draft') = (submitted_at IS NULL)),
    CHECK ((status IN ('paid', 'partly_rejected')) = (answered_on IS NOT NULL))
);
CREATE INDEX gift_aid_claims_tenant_idx ON gift_aid_claims (tenant_id, id DESC);
ALTER TABLE gift_aid_claims ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_aid_claims FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_aid_claims
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- The gifts of a claim, with what was claimed on each. A gift is `included` in at most one claim at a time (the
-- unique index): a second claim can never take it. HMRC's rejection marks it `rejected`, which frees it for a later
-- claim; removing it from a draft deletes the row.
CREATE TABLE gift_aid_claim_gifts (
    tenant_id       uuid NOT NULL DEFAULT almoner_current_tenant(),
    claim_id        uuid NOT NULL,
    gift_id         uuid NOT NULL,
    declaration_id  uuid NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
    state           text NOT NULL DEFAULT 'included' CHECK (state IN ('included', 'rejected')),
    rejection       text CHECK (length(rejection) BETWEEN 1 AND 500),
    PRIMARY KEY (tenant_id, claim_id, gift_id),
    FOREIGN KEY (tenant_id, claim_id) REFERENCES gift_aid_claims (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, gift_id) REFERENCES gifts (tenant_id, id),
    CHECK ((state = 'rejected') = (rejection IS NOT NULL))
);
CREATE UNIQUE INDEX gift_aid_claim_gifts_once_idx ON gift_aid_claim_gifts (tenant_id, gift_id) WHERE state = 'included';
ALTER TABLE gift_aid_claim_gifts ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_aid_claim_gifts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_aid_claim_gifts
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- The gifts up to a claim's date that could not be claimed when it was gathered, with every reason
-- ([{code, detail}] as GET /v1/gifts/{id}/gift-aid gives them), for review.
CREATE TABLE gift_aid_claim_exclusions (
    tenant_id  uuid NOT NULL DEFAULT almoner_current_tenant(),
    claim_id   uuid NOT NULL,
    gift_id    uuid NOT NULL,
    reasons    jsonb NOT NULL,
    PRIMARY KEY (tenant_id, claim_id, gift_id),
    FOREIGN KEY (tenant_id, claim_id) REFERENCES gift_aid_claims (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE gift_aid_claim_exclusions ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_aid_claim_exclusions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_aid_claim_exclusions
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Every schedule file exported from a claim, kept as sent (no cascade: a draft whose files were exported cannot be
-- discarded; take its gifts out instead).
CREATE TABLE gift_aid_claim_files (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    claim_id    uuid NOT NULL,
    -- Files exported together share an export id.
    export_id   uuid NOT NULL,
    format      text NOT NULL CHECK (format IN ('ods', 'csv')),
    part        integer NOT NULL CHECK (part >= 1),
    parts       integer NOT NULL CHECK (parts >= part),
    rows        integer NOT NULL CHECK (rows BETWEEN 0 AND 1000),
    content     bytea NOT NULL,
    sha256      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, claim_id) REFERENCES gift_aid_claims (tenant_id, id)
);
CREATE INDEX gift_aid_claim_files_claim_idx ON gift_aid_claim_files (tenant_id, claim_id, created_at);
ALTER TABLE gift_aid_claim_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_aid_claim_files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_aid_claim_files
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());
