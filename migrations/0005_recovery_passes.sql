-- Where each recovery pass of the scheduler got to (the redelivery pass: the newest delivery it examined, per
-- app), and which replica runs it now: a row lease that expires, so a replica that dies mid-pass frees it.
CREATE TABLE scheduler_passes (
    pass        TEXT PRIMARY KEY,
    cursor      TEXT,
    holder      TEXT,
    lease_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The sweep reads the repositories that had a job lately.
CREATE INDEX idx_jobs_recent_repo ON jobs (created_at DESC, repo_full_name);
