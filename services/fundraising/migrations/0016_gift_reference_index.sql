-- Whether a provider's payment was ever recorded (`payment_recorded`: deleted gifts count, so that a gift staff
-- deleted is not brought back by a later event of its payment) is asked for every payment event. The unique index
-- on external references covers live gifts only, so that question read the whole table: one sequential scan per
-- webhook, which made the payments consumer slower with every gift stored. This index answers it for any gift.
CREATE INDEX gifts_source_reference_idx ON gifts (tenant_id, source, external_reference)
    WHERE external_reference IS NOT NULL;
