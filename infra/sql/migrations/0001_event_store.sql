-- The event log. `position` is unique but NOT commit-ordered; readers order by (txid, position)
-- and never read past pg_snapshot_xmin, so an event that commits late is never skipped.
CREATE TABLE streams (
    stream_id   text PRIMARY KEY,
    project_id  text NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    position       bigserial PRIMARY KEY,
    txid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text NOT NULL,
    version        bigint NOT NULL,
    event_id       uuid NOT NULL UNIQUE,
    type           text NOT NULL,
    schema_version int NOT NULL DEFAULT 1,
    project_id     text NOT NULL,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (stream_id, version)
);
CREATE INDEX events_feed ON events (txid, position);
CREATE INDEX events_project ON events (project_id, position);

-- Appends a batch of items, at most one per stream, in the caller's transaction; returns one row
-- per item. Advisory locks come first and assign no transaction id, so a later append to the
-- same stream always gets a larger txid than the earlier one: per-stream order holds in
-- (txid, position) order. An item is written only if
--   * its expected version matches (expected NULL: any version), else ok = false;
--   * its optional "dedupe": {"key", "task_id", "until"} is not held by an unexpired claim in
--     dedupe_keys (0006), else duplicate_of names the holder;
--   * its optional "slot": {"key", "limit"} (a dispatch with a concurrency key) finds fewer than
--     `limit` tasks with that key dispatched or running in task_view, else limited = true.
-- Dedupe keys and slots are locked in the same sorted pass as streams and held to commit, and the
-- task view is written in the same transaction, so these checks hold across every gateway and
-- scheduler. The others are written, set-based, in one statement.
CREATE FUNCTION ts_append(batch jsonb)
RETURNS TABLE (item int, ok boolean, stream_version bigint, first_position bigint, txid text,
               duplicate_of text, limited boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT hashtextextended(e->>'stream_id', 0) AS k
               FROM jsonb_array_elements(batch) e
             UNION
             SELECT hashtextextended('dedupe:' || (e->>'project_id') || ':' || (e->'dedupe'->>'key'), 0)
               FROM jsonb_array_elements(batch) e
              WHERE e->'dedupe'->>'key' IS NOT NULL
             UNION
             SELECT hashtextextended('slot:' || (e->>'project_id') || ':' || (e->'slot'->>'key'), 0)
               FROM jsonb_array_elements(batch) e
              WHERE e->'slot'->>'key' IS NOT NULL) keys
      ORDER BY k;
    RETURN QUERY
    WITH items AS (
        SELECT (ord - 1)::int AS idx, e->>'stream_id' AS sid, (e->>'expected')::bigint AS expected,
               e->>'project_id' AS project, e->'events' AS evs,
               jsonb_array_length(e->'events') AS n,
               e->'dedupe'->>'key' AS dkey, e->'dedupe'->>'task_id' AS dtask,
               (e->'dedupe'->>'until')::timestamptz AS duntil,
               e->'slot'->>'key' AS skey, (e->'slot'->>'limit')::int AS slimit
          FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(e, ord)
    ), cur AS (
        SELECT i.*, COALESCE(s.version, -1) AS current, d.task_id AS holder,
               i.skey IS NOT NULL AND (
                   SELECT count(*) FROM task_view v
                    WHERE v.project_id = i.project AND v.concurrency_key = i.skey
                      AND v.status IN ('dispatched', 'running')
               ) >= i.slimit AS full
          FROM items i
          LEFT JOIN streams s ON s.stream_id = i.sid
          LEFT JOIN dedupe_keys d
                 ON d.project_id = i.project AND d.dedupe_key = i.dkey AND d.expires_at > now()
    ), good AS (
        SELECT * FROM cur
         WHERE (cur.expected IS NULL OR cur.expected = cur.current) AND cur.holder IS NULL
           AND NOT cur.full
    ), bumped AS (
        UPDATE streams s SET version = g.current + g.n
          FROM good g WHERE s.stream_id = g.sid AND g.current >= 0
    ), opened AS (
        INSERT INTO streams (stream_id, project_id, version)
        SELECT g.sid, g.project, g.n - 1 FROM good g WHERE g.current = -1
    ), claimed AS (
        INSERT INTO dedupe_keys (project_id, dedupe_key, task_id, expires_at)
        SELECT g.project, g.dkey, g.dtask, g.duntil FROM good g WHERE g.dkey IS NOT NULL
        ON CONFLICT (project_id, dedupe_key) DO UPDATE
           SET task_id = EXCLUDED.task_id, expires_at = EXCLUDED.expires_at
    ), written AS (
        INSERT INTO events (stream_id, version, event_id, type, schema_version, project_id,
                            data, metadata)
        SELECT g.sid, g.current + y.o, (y.x->>'id')::uuid, y.x->>'type', (y.x->>'schema')::int,
               g.project, y.x->'data', COALESCE(y.x->'metadata', '{}'::jsonb)
          FROM good g, jsonb_array_elements(g.evs) WITH ORDINALITY AS y(x, o)
        RETURNING events.stream_id, events.position
    ), firsts AS (
        SELECT w.stream_id, min(w.position) AS pos FROM written w GROUP BY w.stream_id
    )
    SELECT c.idx,
           g.idx IS NOT NULL,
           CASE WHEN g.idx IS NOT NULL THEN c.current + c.n ELSE c.current END,
           f.pos,
           CASE WHEN g.idx IS NOT NULL THEN pg_current_xact_id()::text END,
           c.holder,
           c.full
      FROM cur c
      LEFT JOIN good g ON g.idx = c.idx
      LEFT JOIN firsts f ON f.stream_id = c.sid
     ORDER BY c.idx;
END;
$$;

-- Each asynchronous reader (projections, relay) keeps its place here, written in the same
-- transaction as its own output where that output lives in Postgres.
CREATE TABLE checkpoints (
    name        text PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT '0',
    position    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
