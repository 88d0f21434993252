-- Which gift is a donor's first and last (ordered by date, then id): with them the projection can add a gift new to
-- the ledger to a donor's totals without reading the donor's other gifts. Rows written before this migration (or by
-- the previous release during a rollout) have neither; the projection recomputes such a donor from the ledger the
-- next time one of its gifts arrives, which fills them in. Nullable, so the previous release keeps working.
ALTER TABLE donor_totals ADD COLUMN first_gift_id uuid, ADD COLUMN last_gift_id uuid;
