DROP TABLE reconcile_sweeps;
