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

-- Appends a batch of items (one per stream) in the caller's transaction; returns one row per item.
-- Advisory locks come first and assign no transaction id, so a later append to the same stream
-- always gets a larger txid than the earlier one: per-stream order holds in (txid, position) order.
-- A conflicting item (wrong expected version) writes nothing and is reported; the others commit.
CREATE FUNCTION ts_append(batch jsonb)
RETURNS TABLE (item int, ok boolean, stream_version bigint, first_position bigint, txid text)
LANGUAGE plpgsql AS $$
DECLARE
    it        record;
    current   bigint;
    n         int;
    pos       bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT hashtextextended(e->>'stream_id', 0) AS k
               FROM jsonb_array_elements(batch) e) keys
      ORDER BY k;
    FOR it IN
        SELECT (ord - 1)::int AS idx, e->>'stream_id' AS sid, (e->>'expected')::bigint AS expected,
               e->>'project_id' AS project, e->'events' AS evs
          FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(e, ord)
         ORDER BY ord
    LOOP
        n := jsonb_array_length(it.evs);
        SELECT s.version INTO current FROM streams s WHERE s.stream_id = it.sid;
        IF NOT FOUND THEN
            current := -1;
        END IF;
        IF it.expected IS NOT NULL AND it.expected <> current THEN
            item := it.idx; ok := false; stream_version := current; first_position := NULL;
            txid := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF current = -1 THEN
            INSERT INTO streams (stream_id, project_id, version) VALUES (it.sid, it.project, n - 1);
        ELSE
            UPDATE streams SET version = current + n WHERE stream_id = it.sid;
        END IF;
        WITH inserted AS (
            INSERT INTO events (stream_id, version, event_id, type, schema_version, project_id,
                                data, metadata)
            SELECT it.sid, current + o, (x->>'id')::uuid, x->>'type', (x->>'schema')::int,
                   it.project, x->'data', COALESCE(x->'metadata', '{}'::jsonb)
              FROM jsonb_array_elements(it.evs) WITH ORDINALITY AS y(x, o)
            RETURNING position
        )
        SELECT min(position) INTO pos FROM inserted;
        item := it.idx; ok := true; stream_version := current + n; first_position := pos;
        txid := pg_current_xact_id()::text;
        RETURN NEXT;
    END LOOP;
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
