-- Idempotency-Key on POST /api/tasks (and other creates, by `scope`): the first request with a
-- key reserves the id of what it creates, so every retry within the window creates or finds
-- that same object. Only a digest of the body is kept, never the body: it may carry secrets.
CREATE TABLE idempotency_keys (
    project_id   text NOT NULL,
    scope        text NOT NULL,          -- e.g. 'POST /api/tasks'
    idem_key     text NOT NULL,
    fingerprint  bytea NOT NULL,         -- SHA-256 of the canonical request body
    resource_id  text NOT NULL,          -- the id the first request chose
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, scope, idem_key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
