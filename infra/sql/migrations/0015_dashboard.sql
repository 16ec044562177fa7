-- The dashboard (services/surfaces/ui_surface): server-side sessions and keyset pages.

-- A browser session: the cookie carries `session_id` signed with the gateway's session key;
-- the row makes logout final and ties the session to the API key it was opened with (a revoked
-- key ends its sessions at their next request).
CREATE TABLE ui_sessions (
    session_id  text PRIMARY KEY,
    project_id  text NOT NULL,
    key_id      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX ui_sessions_expiry ON ui_sessions (expires_at);

-- Keyset pages of a project's tasks, newest first, with the id as the tie-breaker: a page costs
-- the same at row 90,000 as at row 0 (OFFSET would read and drop every row before it). The
-- included columns let a name search filter the index alone (an index-only scan) instead of
-- reading every wide row of the project.
CREATE INDEX task_view_project_keyset
    ON task_view (project_id, created_at DESC, task_id DESC)
    INCLUDE (name, status, schedule_kind) WHERE lifecycle <> 'deleted';
-- Dead letters (tasks failed for good), most recently failed first.
CREATE INDEX task_view_project_failed
    ON task_view (project_id, updated_at DESC, task_id DESC)
    WHERE status = 'failed' AND lifecycle <> 'deleted';
