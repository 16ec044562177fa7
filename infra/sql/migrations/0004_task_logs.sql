-- Log lines written by runs. Not events: they are high-volume and need no replay.
CREATE TABLE task_logs (
    id          bigserial PRIMARY KEY,
    project_id  text NOT NULL,
    task_id     text NOT NULL,
    run_id      text,
    level       text NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    message     text NOT NULL,
    logged_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_logs_task ON task_logs (task_id, logged_at, id);
