-- Jobs (seed 003): the job and execution views, projected inline with each append like the
-- task view. `state` is the folded JobState / ExecutionState at `version`.
CREATE TABLE job_view (
    job_id        text PRIMARY KEY,
    project_id    text NOT NULL,
    version       bigint NOT NULL,
    name          text NOT NULL,
    paused        boolean NOT NULL,
    deleted       boolean NOT NULL,
    next_fire_at  timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    state         jsonb NOT NULL,
    -- A scheduler replica's short claim on a due fire (not projected; cleared by each change).
    claimed_until timestamptz
);
CREATE INDEX job_view_project ON job_view (project_id, created_at DESC, job_id) WHERE NOT deleted;
CREATE INDEX job_view_due ON job_view (next_fire_at) WHERE NOT deleted AND next_fire_at IS NOT NULL;

CREATE TABLE execution_view (
    execution_id       text PRIMARY KEY,
    project_id         text NOT NULL,
    job_id             text NOT NULL,
    version            bigint NOT NULL,
    status             text NOT NULL,
    settled            boolean NOT NULL,
    trigger            text NOT NULL,
    definition_version int NOT NULL,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz,
    updated_at         timestamptz NOT NULL,
    state              jsonb NOT NULL,
    -- When the safety-net sweep may look at this open execution again (not projected).
    checked_until      timestamptz
);
CREATE INDEX execution_view_job ON execution_view (job_id, created_at DESC, execution_id);
CREATE INDEX execution_view_open ON execution_view (updated_at) WHERE NOT settled;
