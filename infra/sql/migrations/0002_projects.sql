-- Tenants and their API keys. Keys are stored only as SHA-256 digests; `key_id` is the public
-- part of the key used to find the row, the secret part is compared in constant time.
CREATE TABLE projects (
    project_id  text PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,
    project_id  text NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    digest      bytea NOT NULL,
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_project ON api_keys (project_id);
