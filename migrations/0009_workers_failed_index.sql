-- The dashboard lists the workers that failed last. Failures are a small share of all workers, so walking the
-- completed_at index backwards would visit every worker that completed since the last failure; a partial index
-- holds only the failed ones, newest found first.
CREATE INDEX idx_workers_failed_completed ON workers (completed_at DESC NULLS LAST, pod_name DESC) WHERE status = 'failed';
