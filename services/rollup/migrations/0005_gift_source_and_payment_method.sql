-- Where each gift came from (`manual`, `import`, `stripe`, ...) and how it was paid, as in the gift's stored
-- revision, for the summary's income by source. Rows stored before this migration have neither (reported as
-- source `unknown`) until an event of the gift is applied again: a newer revision, or `fundraising replay`,
-- whose re-emitted revision is stored once more while the row has no source.
ALTER TABLE gifts ADD COLUMN source text, ADD COLUMN payment_method text;
