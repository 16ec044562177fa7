-- Dedupe keys: a create naming a key that is still held returns the task holding it.
CREATE TABLE dedupe_keys (
    project_id  text NOT NULL,
    dedupe_key  text NOT NULL,
    task_id     text NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (project_id, dedupe_key)
);
