-- The weekly usage report's roll-up. A background pass (Db.foldWeeklyUsage) folds whole UTC days of jobs and
-- workers into their additive parts per (entity, day), once no row that those days' figures depend on can change
-- any more; the report reads the folded days of its window and computes the days after the mark from the rows.
-- What a part holds is said in layers/db/postgresUsageParts.ts.

-- The mark: every day before folded_until is folded (NULL: nothing yet). One row, locked by each pass, so two
-- replicas or a restart never fold a day twice.
CREATE TABLE weekly_usage_fold (
    id           BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    folded_until TIMESTAMPTZ
);
INSERT INTO weekly_usage_fold (id, folded_until) VALUES (true, NULL);

-- Per (entity, day): the jobs queued that day (how many, how many a runner took, failures by class, the sorted
-- waits of those whose runner ran) and the board time of its workers that day.
CREATE TABLE weekly_usage_days (
    day           TIMESTAMPTZ NOT NULL,
    entity_id     BIGINT NOT NULL,
    jobs          INT NOT NULL,
    jobs_run      INT NOT NULL,
    jobs_failed   JSONB NOT NULL,
    waits         FLOAT8[] NOT NULL,
    board_seconds FLOAT8 NOT NULL,
    PRIMARY KEY (day, entity_id)
);

-- Per (entity, day, active workers): the milliseconds of that day in which more of its jobs waited than it had
-- runners starting while that many of its workers were active. The time at a cap c is the sum over active >= c.
CREATE TABLE weekly_usage_held (
    day      TIMESTAMPTZ NOT NULL,
    entity_id BIGINT NOT NULL,
    active   INT NOT NULL,
    held_ms  BIGINT NOT NULL,
    PRIMARY KEY (day, entity_id, active)
);

-- The name and type of each entity's newest job or worker made before the mark (the report shows current names).
CREATE TABLE weekly_usage_names (
    entity_id   BIGINT PRIMARY KEY,
    entity_name TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    newest_at   TIMESTAMPTZ NOT NULL
);

-- What holds the mark back: the oldest job or worker that can still change. And the newest rows' names.
CREATE INDEX idx_jobs_open_created    ON jobs (created_at) WHERE status IN ('pending', 'running');
CREATE INDEX idx_workers_open_created ON workers (created_at) WHERE status IN ('pending', 'running');
CREATE INDEX idx_workers_created      ON workers (created_at);
