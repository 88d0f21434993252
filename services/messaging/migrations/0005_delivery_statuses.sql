-- What Twilio last told of each message (its own status word, kept even when Almoner has no state for it), and
-- when it was delivered.
ALTER TABLE send_jobs
    ADD COLUMN provider_status text,
    ADD COLUMN delivered_at timestamptz;
