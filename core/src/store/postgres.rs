//! The PostgreSQL backend: the seed's `project` and `deployment` tables in a
//! configurable schema, the invariants as constraints, changes serialized
//! by a row lock on the project.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row, Transaction};

use super::sql::{self, DeploymentRow, map_err, map_unique};
use super::{DeploymentLookup, EnvironmentLookup, ListCursor, PendingInvalidation, ProjectInfo, ProjectTx, Store};
use crate::cache::Invalidation;
use crate::config::{Config, validate_schema};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{DeploymentId, OrgId, ProjectId};
use crate::model::{Deployment, Environment, HistoryEntry, Project, Timestamp};
use crate::redact::redact_text;

/// Embedded migrations, in order. A shipped migration is never edited; a
/// change is a new entry.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/postgres_0001_tables.sql"))];

const DEPLOYMENT_COLUMNS: &str =
    "id, project_id, snapshot_id, environment, status, created_at, updated_at, failure_message, promote_when_ready";

/// PostgreSQL through a connection pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: String,
    channel: String,
}

fn deployment_row(row: &PgRow) -> Result<Deployment> {
    DeploymentRow {
        id: row.try_get("id").map_err(map_err)?,
        project_id: row.try_get("project_id").map_err(map_err)?,
        snapshot_id: row.try_get("snapshot_id").map_err(map_err)?,
        environment: row.try_get("environment").map_err(map_err)?,
        status: row.try_get("status").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
        failure_message: row.try_get("failure_message").map_err(map_err)?,
        promote_when_ready: row.try_get("promote_when_ready").map_err(map_err)?,
    }
    .into_deployment()
}

fn project_row(row: &PgRow) -> Result<Project> {
    Ok(Project {
        id: sql::project_id(row.try_get("id").map_err(map_err)?)?,
        org_id: OrgId::new(row.try_get::<String, _>("org_id").map_err(map_err)?).map_err(|_| sql::corrupt("org id"))?,
        name: row.try_get("name").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
    })
}

fn project_info(row: &PgRow) -> Result<Option<ProjectInfo>> {
    let org: Option<String> = row.try_get("org_id").map_err(map_err)?;
    let Some(org) = org else { return Ok(None) };
    Ok(Some(ProjectInfo {
        org_id: OrgId::new(org).map_err(|_| sql::corrupt("org id"))?,
        name: row.try_get("name").map_err(map_err)?,
        version: row.try_get("lupa_version").map_err(map_err)?,
    }))
}

impl PostgresStore {
    /// Connects to `url` (TLS as its `sslmode` says) and applies the
    /// migrations in `config.schema`, creating it when missing. Safe when
    /// several processes open at once.
    pub async fn open(url: &str, config: &Config) -> Result<PostgresStore> {
        validate_schema(&config.schema)?;
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid_argument(format!("store URL: {}", redact_text(&e.to_string()))))?
            .application_name("lupa-core")
            .options([("search_path", config.schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(config.store_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(options);
        let channel = crate::channel::postgres_channel(&config.schema);
        let store = PostgresStore { pool, schema: config.schema.clone(), channel };
        tokio::time::timeout(config.store_timeout, store.migrate())
            .await
            .map_err(|_| Error::storage_unavailable(&"migrations did not finish in time"))??;
        Ok(store)
    }

    /// The schema this store's tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The pool (for a LISTEN connection of the same database).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The LISTEN/NOTIFY channel every change of this schema is announced on.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    async fn migrate(&self) -> Result<()> {
        // The schema name passed validate_schema: plain lower-case letters,
        // digits and '_', so quoting it is enough.
        let schema = format!("\"{}\"", self.schema);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // One migrator at a time per schema, across processes.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('lupa-core:migrate'), hashtext($1))")
            .bind(&self.schema)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(AssertSqlSafe(format!("SET LOCAL search_path TO {schema}")))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS lupa_schema_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM lupa_schema_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        for (version, script) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(AssertSqlSafe(*script)).execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query("INSERT INTO lupa_schema_migrations (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tracing::info!(target: "lupa_core::store", schema = %self.schema, version, "applied migration");
        }
        tx.commit().await.map_err(map_err)
    }

    /// Drops this store's schema with everything in it (tests). The
    /// `public` schema is never dropped.
    pub async fn drop_schema(&self) -> Result<()> {
        if self.schema == "public" {
            return Err(Error::invalid_argument("the public schema is never dropped"));
        }
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema)))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert_project(&self, project: &Project) -> Result<i64> {
        // The NOTIFY is sent at commit, telling other processes' in-process
        // tiers to drop a cached "project not found".
        sqlx::query_scalar(
            "WITH p AS (INSERT INTO project (id, org_id, name, created_at, updated_at, lupa_version) \
             VALUES ($1, $2, $3, $4, $5, nextval('lupa_version_seq')) RETURNING lupa_version) \
             SELECT v FROM (SELECT lupa_version AS v, pg_notify($6, $1 || ':' || lupa_version) FROM p) AS n",
        )
        .bind(project.id.as_str())
        .bind(project.org_id.as_str())
        .bind(&project.name)
        .bind(project.created_at)
        .bind(project.updated_at)
        .bind(&self.channel)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_unique(e, Error::project_exists))
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT id, org_id, name, created_at, updated_at FROM project WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(project_row).transpose()
    }

    async fn list_projects(&self, after: Option<&ProjectId>, limit: u32) -> Result<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, created_at, updated_at FROM project \
             WHERE $1::text IS NULL OR id COLLATE \"C\" > $1::text COLLATE \"C\" \
             ORDER BY id COLLATE \"C\" LIMIT $2",
        )
        .bind(after.map(ProjectId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(project_row).collect()
    }

    async fn get_deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE id = $1")))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(deployment_row).transpose()
    }

    async fn list_deployments(
        &self,
        project: &ProjectId,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<Deployment>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE project_id = $1 \
             AND ($2::timestamptz IS NULL OR (created_at, id COLLATE \"C\") < ($2::timestamptz, $3::text COLLATE \"C\")) \
             ORDER BY created_at DESC, id COLLATE \"C\" DESC LIMIT $4"
        )))
        .bind(project.as_str())
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(deployment_row).collect()
    }

    async fn history(&self, project: &ProjectId, before: Option<i64>, limit: u32) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT seq, deployment_id, from_environment, to_environment, at FROM lupa_deployment_history \
             WHERE project_id = $1 AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3",
        )
        .bind(project.as_str())
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(history_row).collect()
    }

    async fn lookup_environment(&self, project: &ProjectId, environment: Environment) -> Result<EnvironmentLookup> {
        // One statement: one snapshot for the project, its version and the answer.
        let row = sqlx::query(
            "SELECT p.org_id, p.name, p.lupa_version, \
               (SELECT d.id FROM deployment d \
                 WHERE d.project_id = p.id AND d.environment = $2 AND d.status = 'ready' \
                 ORDER BY d.created_at DESC, d.id COLLATE \"C\" DESC LIMIT 1) AS deployment_id \
             FROM project p WHERE p.id = $1",
        )
        .bind(project.as_str())
        .bind(environment.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(EnvironmentLookup { project: None, deployment: None }) };
        let deployment: Option<String> = row.try_get("deployment_id").map_err(map_err)?;
        Ok(EnvironmentLookup {
            project: project_info(&row)?,
            deployment: deployment.map(sql::deployment_id).transpose()?,
        })
    }

    async fn lookup_deployment(&self, project: &ProjectId, deployment: &DeploymentId) -> Result<DeploymentLookup> {
        let row = sqlx::query(
            "SELECT p.org_id, p.name, p.lupa_version, \
                    d.id, d.project_id, d.snapshot_id, d.environment, d.status, d.created_at, d.updated_at, \
                    d.failure_message, d.promote_when_ready, q.lupa_version AS owner_version \
             FROM (SELECT 1) AS one \
             LEFT JOIN project p ON p.id = $1 \
             LEFT JOIN deployment d ON d.id = $2 \
             LEFT JOIN project q ON q.id = d.project_id",
        )
        .bind(project.as_str())
        .bind(deployment.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let id: Option<String> = row.try_get("id").map_err(map_err)?;
        let deployment = match id {
            None => None,
            Some(_) => Some((deployment_row(&row)?, row.try_get("owner_version").map_err(map_err)?)),
        };
        Ok(DeploymentLookup { project: project_info(&row)?, deployment })
    }

    async fn begin(&self, project: &ProjectId) -> Result<Option<Box<dyn ProjectTx>>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let row = sqlx::query("SELECT id, org_id, name, created_at, updated_at FROM project WHERE id = $1 FOR UPDATE")
            .bind(project.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let project = project_row(&row)?;
        Ok(Some(Box::new(PgTx { tx, project, channel: self.channel.clone() })))
    }

    async fn pending_invalidations(&self, limit: u32) -> Result<Vec<PendingInvalidation>> {
        let rows = sqlx::query("SELECT id, payload FROM lupa_cache_outbox ORDER BY id LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut undecodable = Vec::new();
        for row in rows {
            let id: i64 = row.try_get("id").map_err(map_err)?;
            let payload: String = row.try_get("payload").map_err(map_err)?;
            match sql::decode_invalidation(id, &payload) {
                Some(invalidation) => out.push(PendingInvalidation { id, invalidation }),
                None => undecodable.push(id),
            }
        }
        if !undecodable.is_empty() {
            self.clear_invalidations(&undecodable).await?;
        }
        Ok(out)
    }

    async fn clear_invalidations(&self, ids: &[i64]) -> Result<()> {
        // Losing this delete in a crash only means applying the update once
        // more, which is harmless: it need not wait for a disk flush, which
        // would otherwise double the cost of every change.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SET LOCAL synchronous_commit TO OFF").execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query("DELETE FROM lupa_cache_outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn drop_storage(&self) -> Result<()> {
        self.drop_schema().await
    }
}

fn history_row(row: &PgRow) -> Result<HistoryEntry> {
    let from: String = row.try_get("from_environment").map_err(map_err)?;
    let to: String = row.try_get("to_environment").map_err(map_err)?;
    sql::history_entry(
        row.try_get("seq").map_err(map_err)?,
        row.try_get("deployment_id").map_err(map_err)?,
        &from,
        &to,
        row.try_get("at").map_err(map_err)?,
    )
}

struct PgTx {
    tx: Transaction<'static, Postgres>,
    project: Project,
    channel: String,
}

#[async_trait]
impl ProjectTx for PgTx {
    fn project(&self) -> &Project {
        &self.project
    }

    async fn deployment(&mut self, id: &DeploymentId) -> Result<Option<Deployment>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE id = $1")))
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_err)?;
        row.as_ref().map(deployment_row).transpose()
    }

    async fn production(&mut self) -> Result<Option<Deployment>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE project_id = $1 AND environment = 'production'"
        )))
        .bind(self.project.id.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_err)?;
        row.as_ref().map(deployment_row).transpose()
    }

    async fn deployment_ids(&mut self) -> Result<Vec<DeploymentId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM deployment WHERE project_id = $1")
            .bind(self.project.id.as_str())
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_err)?;
        ids.into_iter().map(sql::deployment_id).collect()
    }

    async fn insert_deployment(&mut self, d: &Deployment) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO deployment ({DEPLOYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(d.id.as_str())
        .bind(d.project_id.as_str())
        .bind(d.snapshot_id.as_str())
        .bind(d.environment.as_str())
        .bind(d.status.as_str())
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(d.failure_message.as_deref())
        .bind(d.promote_when_ready)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| map_unique(e, Error::deployment_exists))?;
        Ok(())
    }

    async fn update_deployment(&mut self, d: &Deployment) -> Result<()> {
        sqlx::query(
            "UPDATE deployment SET environment = $2, status = $3, updated_at = $4, failure_message = $5, \
             promote_when_ready = $6 WHERE id = $1",
        )
        .bind(d.id.as_str())
        .bind(d.environment.as_str())
        .bind(d.status.as_str())
        .bind(d.updated_at)
        .bind(d.failure_message.as_deref())
        .bind(d.promote_when_ready)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| {
            // Only a writer that bypasses the project lock can get here.
            map_unique(e, || Error::new(ErrorCode::ProductionConflict, "Another deployment is already production"))
        })?;
        Ok(())
    }

    async fn delete_deployment(&mut self, id: &DeploymentId) -> Result<()> {
        sqlx::query("DELETE FROM deployment WHERE id = $1 AND project_id = $2")
            .bind(id.as_str())
            .bind(self.project.id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_project(&mut self) -> Result<()> {
        sqlx::query("DELETE FROM project WHERE id = $1")
            .bind(self.project.id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn production_history(&mut self, before: Option<i64>, limit: u32) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT seq, deployment_id, from_environment, to_environment, at FROM lupa_deployment_history \
             WHERE project_id = $1 AND to_environment = 'production' AND ($2::bigint IS NULL OR seq < $2) \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(self.project.id.as_str())
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_err)?;
        rows.iter().map(history_row).collect()
    }

    async fn record_history(
        &mut self,
        deployment: &DeploymentId,
        from: Environment,
        to: Environment,
        at: Timestamp,
    ) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO lupa_deployment_history (project_id, seq, deployment_id, from_environment, to_environment, at) \
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM lupa_deployment_history WHERE project_id = $1 \
             RETURNING seq",
        )
        .bind(self.project.id.as_str())
        .bind(deployment.as_str())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(at)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_err)
    }

    async fn bump_version(&mut self) -> Result<i64> {
        // The version is drawn even when the project row was just deleted:
        // the cache must still learn of the change. The NOTIFY goes out at
        // commit, to other processes' in-process tiers.
        sqlx::query_scalar(
            "WITH v AS (SELECT nextval('lupa_version_seq') AS v), \
             u AS (UPDATE project SET lupa_version = (SELECT v FROM v) WHERE id = $1) \
             SELECT v FROM (SELECT v, pg_notify($2, $1 || ':' || v) FROM v) AS n",
        )
        .bind(self.project.id.as_str())
        .bind(&self.channel)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_err)
    }

    async fn enqueue_invalidation(&mut self, invalidation: &Invalidation) -> Result<i64> {
        sqlx::query_scalar("INSERT INTO lupa_cache_outbox (payload) VALUES ($1) RETURNING id")
            .bind(sql::encode_invalidation(invalidation))
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_err)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(map_err)
    }
}
