-- The tenant settings fundraising learns from identity (identity.tenant.updated.v1, consumed on the queue
-- fundraising.tenant_settings): the fiscal year start and the accounting period end, with the revision they came
-- with, so only a newer revision replaces them. A tenant without a row has the defaults (April; 31 March).
-- Day 29 of February means the last day of February, whatever the year.
CREATE TABLE tenant_settings (
    tenant_id                   uuid PRIMARY KEY DEFAULT almoner_current_tenant(),
    revision                    bigint NOT NULL CHECK (revision >= 1),
    fiscal_year_start_month     smallint NOT NULL CHECK (fiscal_year_start_month BETWEEN 1 AND 12),
    accounting_period_end_month smallint NOT NULL CHECK (accounting_period_end_month BETWEEN 1 AND 12),
    accounting_period_end_day   smallint NOT NULL CHECK (accounting_period_end_day BETWEEN 1 AND CASE
        WHEN accounting_period_end_month = 2 THEN 29
        WHEN accounting_period_end_month IN (4, 6, 9, 11) THEN 30
        ELSE 31 END),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_settings
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- A claim keeps each donor's name and address as HMRC's schedule shows them when the claim was gathered, so
-- editing or deleting the donor's details afterwards cannot change an exported schedule. donor_postcode NULL with
-- a snapshot means a donor living abroad (HMRC's "X"). Claims gathered before this migration have no snapshot
-- (donor_last_name NULL) and are exported from the donor's details as they are.
ALTER TABLE gift_aid_claim_gifts
    ADD COLUMN donor_title      text CHECK (length(donor_title) BETWEEN 2 AND 4),
    ADD COLUMN donor_first_name text CHECK (length(donor_first_name) BETWEEN 1 AND 35),
    ADD COLUMN donor_last_name  text CHECK (length(donor_last_name) BETWEEN 1 AND 35),
    ADD COLUMN donor_house      text CHECK (length(donor_house) BETWEEN 1 AND 40),
    ADD COLUMN donor_postcode   text CHECK (length(donor_postcode) BETWEEN 1 AND 8),
    ADD CONSTRAINT gift_aid_claim_gifts_snapshot_check
        CHECK ((donor_last_name IS NULL) = (donor_first_name IS NULL)
           AND (donor_last_name IS NULL) = (donor_house IS NULL));
