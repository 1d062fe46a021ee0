-- Transactional outbox: notifications are written in the same transaction as the change
-- they announce, and delivered afterwards, at least once, each with a stable id.
CREATE TABLE notifications (
    id              uuid        PRIMARY KEY,
    kind            text        NOT NULL,
    -- Makes "enqueue" idempotent: one notification per (event, effect).
    dedupe_key      text        NOT NULL
        CONSTRAINT notifications_dedupe_key_key UNIQUE,
    -- No foreign key on purpose: enqueuing must never fail over a reference.
    tenant_id       uuid,
    payload         text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
        CONSTRAINT notifications_status_check CHECK (status IN (
            'pending', 'delivered', 'logged', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0
        CONSTRAINT notifications_attempts_check CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);

-- The delivery worker only ever looks at pending rows that are due.
CREATE INDEX notifications_pending_due_idx ON notifications (next_attempt_at)
    WHERE status = 'pending';
