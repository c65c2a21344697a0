-- Board quarantine (issue 14): the standing of each board the scheduler stopped trusting, shared by every
-- scheduler replica and kept across restarts, and the record of each change with its evidence (the failed workers).
CREATE TABLE board_states (
  node              TEXT PRIMARY KEY,
  pool              TEXT NOT NULL,
  state             TEXT NOT NULL CHECK (state IN ('quarantined', 'trial', 'healthy')),
  since             TIMESTAMPTZ NOT NULL,
  until             TIMESTAMPTZ,
  probation_seconds INTEGER NOT NULL CHECK (probation_seconds > 0)
);

CREATE TABLE board_events (
  id                BIGSERIAL PRIMARY KEY,
  node              TEXT NOT NULL,
  pool              TEXT NOT NULL,
  kind              TEXT NOT NULL CHECK (kind IN ('quarantined', 'released', 'trial_passed', 'operator_release')),
  at                TIMESTAMPTZ NOT NULL,
  probation_seconds INTEGER,
  evidence          JSONB NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX idx_board_events_at ON board_events (at DESC, id DESC);

-- The quarantine rule reads the recent ends of workers that ran on a node.
CREATE INDEX idx_workers_node_completed ON workers (completed_at) WHERE k8s_node IS NOT NULL;
