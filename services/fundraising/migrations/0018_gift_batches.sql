-- Gift batches: staff keying a stack of cheques or a bank statement say how many gifts it holds and what they add up
-- to, key each gift as an entry, and process the batch (turning every entry into a gift, in one transaction) only
-- when the entries' count and total match. Until then an entry is not a gift: no event, no rollup, no Gift Aid.
CREATE TABLE gift_batches (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL DEFAULT almoner_current_tenant(),
    revision               bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    currency               text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    expected_count         integer NOT NULL CHECK (expected_count BETWEEN 1 AND 10000),
    expected_total_minor   bigint NOT NULL CHECK (expected_total_minor > 0),
    -- What an entry gets when it leaves the field out: a single allocation of its whole amount, a payment method,
    -- a gift date.
    default_fund_id        uuid,
    default_payment_method text CHECK (length(default_payment_method) BETWEEN 1 AND 50),
    default_gift_date      date,
    status                 text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'processed')),
    processed_at           timestamptz,
    -- The token subject (a member of staff or an API key) that processed it.
    processed_by           text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, default_fund_id) REFERENCES funds (tenant_id, id),
    CHECK ((status = 'processed') = (processed_at IS NOT NULL AND processed_by IS NOT NULL))
);
CREATE INDEX gift_batches_tenant_idx ON gift_batches (tenant_id, id DESC);
CREATE INDEX gift_batches_status_idx ON gift_batches (tenant_id, status, id DESC);
ALTER TABLE gift_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_batches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_batches
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A gift as keyed into a batch, the defaults applied, in the shape of a gift's fields (allocations and soft credits
-- as JSON, each `{fund_id, amount_minor}` or `{donor_id, amount_minor, kind}`). `position` is the order of entry.
-- The donor, funds and pledge it names are checked by the service when the entry is keyed and again when the batch
-- is processed, not by foreign keys: a donor deleted meanwhile makes processing refuse the entry rather than the
-- deletion fail. `gift_id` is the gift the entry became, once processed.
CREATE TABLE gift_batch_entries (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL DEFAULT almoner_current_tenant(),
    batch_id           uuid NOT NULL,
    position           integer NOT NULL CHECK (position >= 1),
    donor_id           uuid NOT NULL,
    amount_minor       bigint NOT NULL CHECK (amount_minor > 0),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    gift_date          date NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    payment_method     text,
    source             text NOT NULL CHECK (length(source) BETWEEN 1 AND 50),
    fund               text,
    campaign           text,
    notes              text,
    external_reference text,
    allocations        jsonb NOT NULL DEFAULT '[]'::jsonb,
    soft_credits       jsonb NOT NULL DEFAULT '[]'::jsonb,
    pledge_id          uuid,
    sponsored_event    boolean NOT NULL DEFAULT false,
    gift_id            uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, batch_id, position),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES gift_batches (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE gift_batch_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE gift_batch_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gift_batch_entries
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- The batch a gift was processed from, so clients can link back (`GET /v1/gifts?batch_id=`). Not in the gift's
-- events: consumers need nothing of batches. A processed batch cannot be deleted, so the reference holds.
ALTER TABLE gifts ADD COLUMN batch_id uuid;
ALTER TABLE gifts ADD CONSTRAINT gifts_batch_fk FOREIGN KEY (tenant_id, batch_id) REFERENCES gift_batches (tenant_id, id);
CREATE INDEX gifts_batch_idx ON gifts (tenant_id, batch_id, gift_date DESC, id DESC) WHERE batch_id IS NOT NULL;
