-- The task view, projected in the same transaction as each append (read-your-writes).
-- `state` is the folded TaskState at `version`: handlers load it instead of replaying the stream.
CREATE TABLE task_view (
    task_id          text PRIMARY KEY,
    project_id       text NOT NULL,
    version          bigint NOT NULL,
    status           text NOT NULL,
    lifecycle        text NOT NULL,
    name             text NOT NULL,
    priority         int NOT NULL,
    tags             text[] NOT NULL DEFAULT '{}',
    created_by       text,
    schedule_kind    text NOT NULL,
    schedule_expr    text NOT NULL,
    next_run_at      timestamptz,
    dedupe_key       text,
    concurrency_key  text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    state            jsonb NOT NULL
);
CREATE INDEX task_view_project_created ON task_view (project_id, created_at DESC) WHERE lifecycle <> 'deleted';
CREATE INDEX task_view_project_status ON task_view (project_id, status) WHERE lifecycle <> 'deleted';
-- fastupdate off: no pending list whose periodic flush stalls an unlucky insert.
CREATE INDEX task_view_tags ON task_view USING gin (tags) WITH (fastupdate = off);
CREATE INDEX task_view_due ON task_view (next_run_at) WHERE lifecycle = 'active' AND next_run_at IS NOT NULL;
