-- Each sender number's pace, shared by every replica's sender: a batch reserves its calls' slots here in the
-- transaction that takes it (under the tenant's settings lock), so replicas together keep one pace per number.
CREATE TABLE sender_pace (
    tenant_id  uuid NOT NULL DEFAULT almoner_current_tenant(),
    -- An E.164 number, a messaging service or an alphanumeric sender ID, as campaigns name it.
    sender     text NOT NULL,
    -- The number's next free slot.
    next_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sender)
);
ALTER TABLE sender_pace ENABLE ROW LEVEL SECURITY;
ALTER TABLE sender_pace FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sender_pace
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Spend is read before every batch the sender takes and every campaign queued: ranges of these indexes instead of
-- a scan of every job the tenant ever had.
CREATE INDEX send_jobs_sent_at_idx ON send_jobs (tenant_id, sent_at) INCLUDE (cost_micros, segments, status)
    WHERE sent_at IS NOT NULL;
CREATE INDEX send_jobs_sending_idx ON send_jobs (tenant_id, sending_at) INCLUDE (cost_micros)
    WHERE status = 'sending';
CREATE INDEX send_jobs_outstanding_idx ON send_jobs (tenant_id) INCLUDE (cost_micros, segments)
    WHERE status IN ('queued', 'sending');
