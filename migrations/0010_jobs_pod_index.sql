-- The scheduler's demand counts a runner that ended a moment ago as still serving its group while no job names its
-- pod yet (its job's news is on its way), which asks, for each such runner, whether a job names it. Without an
-- index that is a scan of every job on each demand read. Only jobs a runner has taken have a pod.
CREATE INDEX idx_jobs_k8s_pod ON jobs (k8s_pod) WHERE k8s_pod IS NOT NULL;
