-- A task's notify_url is delivered like a project webhook endpoint: one endpoint row per task
-- (task_id set), created by the webhook fan-out when it first sees the task with a notify_url.
-- Those deliveries are signed with the project's notify secret rather than a per-row one, so
-- the secret can be read (GET /api/webhooks/notify-secret) and rotated in one place.
ALTER TABLE webhook_endpoints ADD COLUMN task_id text;
CREATE UNIQUE INDEX webhook_endpoints_task ON webhook_endpoints (task_id) WHERE task_id IS NOT NULL;

CREATE TABLE notify_secrets (
    project_id text PRIMARY KEY,
    secret     text NOT NULL,
    rotated_at timestamptz NOT NULL DEFAULT now()
);
