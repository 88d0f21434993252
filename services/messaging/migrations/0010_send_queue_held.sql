-- The sender takes due jobs straight off an index in due order: jobs of a campaign that is paused (or otherwise not
-- live) are `held` in the queue rather than skipped at every take. Pausing a campaign holds its queued jobs,
-- resuming releases them; a held row the sender meets anyway (a retry requeued while its campaign paused) is held
-- then. A job being sent stays takeable: its lease must run out for it to be looked up.
ALTER TABLE send_queue ADD COLUMN held boolean NOT NULL DEFAULT false;
UPDATE send_queue q SET held = true
    FROM send_jobs j JOIN campaigns c ON c.id = j.campaign_id AND c.tenant_id = j.tenant_id
    WHERE j.id = q.job_id AND j.status <> 'sending' AND c.status NOT IN ('scheduled', 'running');
CREATE INDEX send_queue_takeable_idx ON send_queue (tenant_id, send_at) WHERE NOT held;
-- Which tenants have takeable jobs: a loose scan, one index probe per tenant.
CREATE INDEX send_queue_tenants_idx ON send_queue (tenant_id) WHERE NOT held;
