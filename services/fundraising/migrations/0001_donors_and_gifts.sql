-- Donors: one row per person who gives. `revision` starts at 1 and grows by one with every change, so consumers of
-- the state-carrying events can ignore anything older than what they hold.
CREATE TABLE donors (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL DEFAULT almoner_current_tenant(),
    revision          bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    title             text,
    first_name        text,
    last_name         text NOT NULL CHECK (length(last_name) BETWEEN 1 AND 200),
    email             text,
    phone             text,
    address_line1     text,
    address_line2     text,
    address_town      text,
    address_county    text,
    address_postcode  text,
    address_country   text,
    contact_by_email  boolean NOT NULL DEFAULT false,
    contact_by_sms    boolean NOT NULL DEFAULT false,
    contact_by_post   boolean NOT NULL DEFAULT false,
    contact_by_phone  boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
-- Listing pages (ids are UUIDv7, so id order is creation order) and each search the API offers.
CREATE INDEX donors_tenant_id_idx ON donors (tenant_id, id DESC);
CREATE INDEX donors_first_name_idx ON donors (tenant_id, lower(first_name) text_pattern_ops);
CREATE INDEX donors_last_name_idx ON donors (tenant_id, lower(last_name) text_pattern_ops);
CREATE INDEX donors_full_name_idx ON donors (tenant_id, lower(coalesce(first_name, '') || ' ' || last_name) text_pattern_ops);
CREATE INDEX donors_email_idx ON donors (tenant_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX donors_postcode_idx ON donors (tenant_id, address_postcode) WHERE address_postcode IS NOT NULL;
ALTER TABLE donors ENABLE ROW LEVEL SECURITY;
ALTER TABLE donors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON donors
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- A donor's id in another system (a legacy CRM, a payment provider): one per donor and source, and within a tenant
-- one donor per (source, id).
CREATE TABLE donor_external_ids (
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id    uuid NOT NULL,
    source      text NOT NULL CHECK (length(source) BETWEEN 1 AND 100),
    external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
    PRIMARY KEY (tenant_id, donor_id, source),
    CONSTRAINT donor_external_ids_unique UNIQUE (tenant_id, source, external_id),
    FOREIGN KEY (tenant_id, donor_id) REFERENCES donors (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE donor_external_ids ENABLE ROW LEVEL SECURITY;
ALTER TABLE donor_external_ids FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON donor_external_ids
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Gifts, and refunds as gifts of their own with a negative amount and `refund_of` set. A deleted gift keeps its
-- row (`deleted_at`) so its revision keeps growing and the deletion event can carry a newer one; deleted rows are
-- invisible to the API.
CREATE TABLE gifts (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL DEFAULT almoner_current_tenant(),
    donor_id           uuid NOT NULL,
    revision           bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    amount_minor       bigint NOT NULL CHECK (amount_minor <> 0),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    gift_date          date NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    payment_method     text,
    source             text NOT NULL CHECK (length(source) BETWEEN 1 AND 50),
    fund               text,
    campaign           text,
    notes              text,
    external_reference text,
    refund_of          uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, donor_id) REFERENCES donors (tenant_id, id),
    FOREIGN KEY (tenant_id, refund_of) REFERENCES gifts (tenant_id, id),
    CHECK ((refund_of IS NULL) = (amount_minor > 0))
);
CREATE UNIQUE INDEX gifts_external_reference_idx ON gifts (tenant_id, source, external_reference)
    WHERE external_reference IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX gifts_date_idx ON gifts (tenant_id, gift_date DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX gifts_donor_idx ON gifts (tenant_id, donor_id, gift_date DESC, id DESC);
CREATE INDEX gifts_refund_of_idx ON gifts (tenant_id, refund_of) WHERE refund_of IS NOT NULL;
ALTER TABLE gifts ENABLE ROW LEVEL SECURITY;
ALTER TABLE gifts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gifts
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Which tenants have fundraising data, readable without a tenant so `fundraising replay` can visit each one in a
-- tenant transaction. Holds no tenant data beyond the id (like identity's api_key_tenants), hence no row-level
-- security. Filled by a trigger, so no code path can forget it.
CREATE TABLE known_tenants (
    tenant_id     uuid PRIMARY KEY,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION remember_donor_tenant() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    AS $$
BEGIN
    INSERT INTO known_tenants (tenant_id) VALUES (NEW.tenant_id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER donors_remember_tenant AFTER INSERT ON donors
    FOR EACH ROW EXECUTE FUNCTION remember_donor_tenant();
