-- Lifecycle webhooks. An endpoint's secret must be readable to sign deliveries, so it is
-- stored; the API shows it once, at creation.
CREATE TABLE webhook_endpoints (
    endpoint_id     text PRIMARY KEY,
    project_id      text NOT NULL,
    url             text NOT NULL,
    secret          text NOT NULL,
    events          text[] NOT NULL DEFAULT '{}',
    description     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    disabled_reason text
);
CREATE INDEX webhook_endpoints_project ON webhook_endpoints (project_id) WHERE disabled_at IS NULL;

-- One row per (endpoint, event): the message. `delivery_id` is the webhook-id header, the same
-- on every attempt so receivers can drop repeats.
CREATE TABLE webhook_deliveries (
    delivery_id     text PRIMARY KEY,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
    project_id      text NOT NULL,
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id  text NOT NULL REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE,
    attempt      int NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    status_code  int,
    error        text,
    duration_ms  float8 NOT NULL DEFAULT 0,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE FUNCTION ts_notify_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ts_due', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER webhook_deliveries_notify
    AFTER INSERT ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION ts_notify_webhook();
