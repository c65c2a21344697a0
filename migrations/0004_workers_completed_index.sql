-- The weekly usage report reads the workers that were active at some point of its window: those completed since
-- its start, and those still active (completed_at NULL). Without an index that is a scan of every worker ever made.
CREATE INDEX idx_workers_completed ON workers (completed_at);
