-- Several clusters (issue 14): the cluster a worker's pod lives in, so each cluster's phases reconcile only its own
-- workers. Every row written before this migration was a pod of the one cluster of KUBECONFIG, which the runner
-- config calls 'default' (DEFAULT_CLUSTER); the column default gives them that name.
ALTER TABLE workers ADD COLUMN cluster TEXT NOT NULL DEFAULT 'default';
