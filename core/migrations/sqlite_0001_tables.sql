CREATE TABLE IF NOT EXISTS project (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    lupa_version INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS deployment (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    snapshot_id TEXT NOT NULL,
    environment TEXT NOT NULL DEFAULT 'staging' CHECK (environment IN ('production', 'staging')),
    status TEXT NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'ready', 'failed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    failure_message TEXT,
    promote_when_ready INTEGER NOT NULL DEFAULT 0,
    -- Invariant 2: a production deployment is ready.
    CHECK (environment <> 'production' OR status = 'ready')
);
-- Invariant 1: at most one production deployment per project.
CREATE UNIQUE INDEX deployment_one_production ON deployment (project_id) WHERE environment = 'production';
CREATE INDEX deployment_by_project ON deployment (project_id, environment, status, created_at DESC);

CREATE TABLE lupa_deployment_history (
    project_id TEXT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    deployment_id TEXT NOT NULL,
    from_environment TEXT NOT NULL,
    to_environment TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (project_id, seq)
);

CREATE TABLE lupa_cache_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE lupa_version_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO lupa_version_counter (id, value) VALUES (1, 0);
