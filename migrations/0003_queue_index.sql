-- The queue view's index of the pending backlog (GET /queue.json): the pending jobs already grouped by
-- (entity, label set, pool) and in age order, so reading 50,000 of them needs no sort.
CREATE INDEX idx_jobs_pending_queue ON jobs (entity_id, job_labels, k8s_pool, created_at, job_id) WHERE status = 'pending';
