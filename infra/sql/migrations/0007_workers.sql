-- The worker registry. One row per worker process, updated in place by its heartbeat
-- (heartbeats are not events). Registration and going offline are events, appended to the
-- stream `worker-<worker_id>` of project `_system`; this row is the current picture.
CREATE TABLE workers (
    worker_id      text PRIMARY KEY,
    hostname       text NOT NULL,
    version        text NOT NULL,
    tags           text[] NOT NULL DEFAULT '{}',
    registered_at  timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    offline_at     timestamptz,
    cpu_usage      float8 NOT NULL DEFAULT 0,
    memory_usage   float8 NOT NULL DEFAULT 0,
    disk_usage     float8 NOT NULL DEFAULT 0
);
-- The offline sweep: live workers by heartbeat age.
CREATE INDEX workers_live_heartbeat ON workers (last_heartbeat) WHERE offline_at IS NULL;

-- A worker's current runs (status, current_tasks, current_task_ids).
CREATE INDEX task_view_running_worker ON task_view ((state->>'worker_id'), project_id)
    WHERE status = 'running';
-- A worker's run counts, per project: events whose actor is `worker:<id>`.
CREATE INDEX events_worker_outcomes ON events (project_id, (metadata->>'actor'), type)
    WHERE type IN ('task.completed', 'task.failed');
-- The tasks a worker started, per project (GET /api/workers/{id}/tasks).
CREATE INDEX events_worker_starts ON events (project_id, (data->>'worker_id'))
    WHERE type = 'task.started';
