-- The queue view's index of the pending backlog (GET /queue.json): the pending jobs already grouped by
-- (entity, label set, pool, and the repository that a personal account's runners are scoped to) and in age order,
-- so reading 50,000 of them needs no sort. Plain columns only, so the read can be an index-only scan.
CREATE INDEX idx_jobs_pending_queue ON jobs (entity_id, job_labels, k8s_pool, entity_type, repo_full_name, created_at, job_id)
  WHERE status = 'pending';
