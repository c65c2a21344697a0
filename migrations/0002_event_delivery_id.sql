-- GitHub's X-GitHub-Delivery id, so a re-delivery of the same webhook can be recognised in the trace.
ALTER TABLE installation_events ADD COLUMN delivery_id TEXT;
CREATE INDEX idx_install_events_delivery ON installation_events (delivery_id) WHERE delivery_id IS NOT NULL;
