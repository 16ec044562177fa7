-- Issue 10 §5. Two reactions to a task's cancel or delete that must happen in the same
-- transaction as the event, whichever process appended it (gateway, CLI, scheduler's
-- dependency cancel), so they are triggers on the log rather than calls each writer must make.

-- 1. A cancel or delete that stopped a run (`run_id` set) tells the workers at commit: the one
--    running it aborts the action within a second (services/runs/cancellation.py). The lease
--    heartbeat is the safety net when a worker's listening connection was down.
CREATE FUNCTION ts_notify_run_stopped() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ts_run_stopped', substr(NEW.stream_id, 6));
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_run_stopped
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN (NEW.type IN ('task.cancelled', 'task.deleted') AND NEW.data ? 'run_id'
          AND NEW.data->>'run_id' IS NOT NULL)
    EXECUTE FUNCTION ts_notify_run_stopped();

-- 2. Deliveries about one stream go out in log order per endpoint: a delivery waits while an
--    earlier one of its stream to the same endpoint is still pending.
ALTER TABLE webhook_deliveries ADD COLUMN stream_id text;
ALTER TABLE webhook_deliveries ADD COLUMN stream_version bigint;
CREATE INDEX webhook_deliveries_stream_order
    ON webhook_deliveries (endpoint_id, stream_id, stream_version) WHERE status = 'pending';

-- 3. A deleted task's own notify_url endpoint stops: its queued deliveries are dropped (kept,
--    with status `dropped`, so the attempts made so far stay listed) and the endpoint disabled.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'dropped'));

CREATE FUNCTION ts_drop_task_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    endpoint text := 'wht_' || substr(NEW.stream_id, 6);
BEGIN
    UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = 'task deleted'
     WHERE endpoint_id = endpoint AND disabled_at IS NULL;
    UPDATE webhook_deliveries SET status = 'dropped', claimed_until = NULL
     WHERE endpoint_id = endpoint AND status = 'pending';
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_task_deleted_notify
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN (NEW.type = 'task.deleted')
    EXECUTE FUNCTION ts_drop_task_notify();
