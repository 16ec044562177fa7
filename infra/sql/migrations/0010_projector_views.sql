-- Views kept by the asynchronous projector (services/projector). Each is a pure function of the
-- log (projections/), checkpointed in `checkpoints` under its own table name, with its rows and
-- its checkpoint written in one transaction; `taskstream projections rebuild NAME` rebuilds one
-- into a fresh table and swaps it in. Sums are integers (microseconds) so that any batching of
-- the same events gives exactly the same rows.

-- Runs each worker finished, per project (the caller's counts in GET /api/workers): a
-- task.completed / final task.failed appended by `worker:<id>`.
CREATE TABLE worker_view (
    worker_id        text NOT NULL,
    project_id       text NOT NULL,
    tasks_completed  bigint NOT NULL DEFAULT 0,
    tasks_failed     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (worker_id, project_id)
);

-- Per-minute buckets per project. `failed` counts final failures; execution time is every
-- finished attempt's duration; lateness is due -> dispatched of each dispatch.
CREATE TABLE metrics_view (
    project_id       text NOT NULL,
    minute           timestamptz NOT NULL,
    created          bigint NOT NULL DEFAULT 0,
    started          bigint NOT NULL DEFAULT 0,
    completed        bigint NOT NULL DEFAULT 0,
    failed           bigint NOT NULL DEFAULT 0,
    retried          bigint NOT NULL DEFAULT 0,
    exec_us_sum      bigint NOT NULL DEFAULT 0,
    exec_count       bigint NOT NULL DEFAULT 0,
    lateness_us_sum  bigint NOT NULL DEFAULT 0,
    lateness_count   bigint NOT NULL DEFAULT 0,
    lateness_us_max  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, minute)
);

-- The worker view replaces the per-request count over the log that this index served.
DROP INDEX IF EXISTS events_worker_outcomes;
