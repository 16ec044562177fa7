-- Scheduling columns on the task view. They are not projected from events:
--  * claimed_until/claimed_by: a scheduler replica's short claim on a due task, taken with
--    FOR UPDATE SKIP LOCKED in its own transaction (never in an append transaction, whose first
--    write must be the stream claim). Every projected change clears it.
--  * lease_until: the current run's lease, set from task.dispatched/task.started and pushed
--    forward by worker heartbeats (heartbeats are not events).
ALTER TABLE task_view
    ADD COLUMN claimed_until timestamptz,
    ADD COLUMN claimed_by text,
    ADD COLUMN lease_until timestamptz;

CREATE INDEX task_view_leases ON task_view (lease_until) WHERE status IN ('dispatched', 'running');

-- Wake the schedulers when something may have become due sooner (a hint; they also keep a timer).
CREATE FUNCTION ts_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ts_due', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER task_view_due_notify
    AFTER INSERT OR UPDATE OF next_run_at ON task_view
    FOR EACH STATEMENT EXECUTE FUNCTION ts_notify_due();
