-- The encrypted store of tasks' outbound header values (infra/secret_store.py). Events and
-- views hold only the header names and `ref`; a row is written and destroyed in the same
-- transaction as the task event that sets or drops it, so deleting the task shreds it.
CREATE TABLE task_secrets (
    ref        text PRIMARY KEY,
    project_id text NOT NULL,
    task_id    text NOT NULL,
    -- ts1.<key id>.<base64url(nonce ‖ AES-GCM ciphertext ‖ tag)>, bound to project, task, ref
    token      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_secrets_task ON task_secrets (task_id);
