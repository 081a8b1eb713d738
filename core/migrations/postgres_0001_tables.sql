-- The seed's tables, created when missing and extended when they exist, so
-- an existing application and this library can share one database.
CREATE TABLE IF NOT EXISTS project (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE project ADD COLUMN IF NOT EXISTS lupa_version bigint NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS deployment (
    id text PRIMARY KEY,
    project_id text NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    snapshot_id text NOT NULL,
    environment text NOT NULL DEFAULT 'staging',
    status text NOT NULL DEFAULT 'processing',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE deployment ADD COLUMN IF NOT EXISTS failure_message text;
ALTER TABLE deployment ADD COLUMN IF NOT EXISTS promote_when_ready boolean NOT NULL DEFAULT false;

ALTER TABLE deployment ADD CONSTRAINT deployment_environment_known
    CHECK (environment IN ('production', 'staging'));
ALTER TABLE deployment ADD CONSTRAINT deployment_status_known
    CHECK (status IN ('processing', 'ready', 'failed'));
-- Invariant 2: a production deployment is ready.
ALTER TABLE deployment ADD CONSTRAINT deployment_production_is_ready
    CHECK (environment <> 'production' OR status = 'ready');
-- Invariant 1: at most one production deployment per project.
CREATE UNIQUE INDEX deployment_one_production ON deployment (project_id) WHERE environment = 'production';
CREATE INDEX deployment_by_project ON deployment (project_id, environment, status, created_at DESC);

CREATE TABLE lupa_deployment_history (
    project_id text NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    deployment_id text NOT NULL,
    from_environment text NOT NULL,
    to_environment text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (project_id, seq)
);

-- Cache updates written in the same transaction as their change, removed
-- once applied: a change made while the cache is unreachable is not lost.
CREATE TABLE lupa_cache_outbox (
    id bigserial PRIMARY KEY,
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Project versions only grow, across all projects, so a deleted and
-- recreated project never reuses a version the cache has seen.
CREATE SEQUENCE lupa_version_seq;
