-- The reconciliation sweeps (issue 15): one row per interval, inserted by the replica
-- that sweeps it; the primary key makes every other replica's claim of the same interval
-- fail, so that one replica sweeps per interval.
CREATE TABLE reconcile_sweeps (
    slot TIMESTAMPTZ PRIMARY KEY,
    claimed_by TEXT NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL
);
