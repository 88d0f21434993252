-- Whether a gift was sponsorship of a sponsored event (HMRC's schedule marks such donations "Yes" and never
-- aggregates them). Kept in fundraising; not part of the gift's events.
ALTER TABLE gifts ADD COLUMN sponsored_event boolean NOT NULL DEFAULT false;
