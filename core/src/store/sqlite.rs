//! The SQLite backend: one file (or one in-memory database), the same
//! tables and constraints as PostgreSQL, every write transaction
//! `BEGIN IMMEDIATE` so writers queue instead of failing on upgrade.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, Transaction};

use super::sql::{self, DeploymentRow, map_err, map_unique};
use super::{DeploymentLookup, EnvironmentLookup, ListCursor, PendingInvalidation, ProjectInfo, ProjectTx, Store};
use crate::cache::Invalidation;
use crate::config::Config;
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{DeploymentId, OrgId, ProjectId};
use crate::model::{Deployment, Environment, HistoryEntry, Project, Timestamp, format_timestamp, now, parse_timestamp};
use crate::redact::redact_text;

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/sqlite_0001_tables.sql"))];

const DEPLOYMENT_COLUMNS: &str =
    "id, project_id, snapshot_id, environment, status, created_at, updated_at, failure_message, promote_when_ready";

/// SQLite through a connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn time(row: &SqliteRow, column: &str) -> Result<Timestamp> {
    let text: String = row.try_get(column).map_err(map_err)?;
    parse_timestamp(&text).map_err(|_| sql::corrupt("time"))
}

fn deployment_row(row: &SqliteRow) -> Result<Deployment> {
    DeploymentRow {
        id: row.try_get("id").map_err(map_err)?,
        project_id: row.try_get("project_id").map_err(map_err)?,
        snapshot_id: row.try_get("snapshot_id").map_err(map_err)?,
        environment: row.try_get("environment").map_err(map_err)?,
        status: row.try_get("status").map_err(map_err)?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        failure_message: row.try_get("failure_message").map_err(map_err)?,
        promote_when_ready: row.try_get("promote_when_ready").map_err(map_err)?,
    }
    .into_deployment()
}

fn project_row(row: &SqliteRow) -> Result<Project> {
    Ok(Project {
        id: sql::project_id(row.try_get("id").map_err(map_err)?)?,
        org_id: OrgId::new(row.try_get::<String, _>("org_id").map_err(map_err)?).map_err(|_| sql::corrupt("org id"))?,
        name: row.try_get("name").map_err(map_err)?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn project_info(row: &SqliteRow) -> Result<Option<ProjectInfo>> {
    let org: Option<String> = row.try_get("org_id").map_err(map_err)?;
    let Some(org) = org else { return Ok(None) };
    Ok(Some(ProjectInfo {
        org_id: OrgId::new(org).map_err(|_| sql::corrupt("org id"))?,
        name: row.try_get("name").map_err(map_err)?,
        version: row.try_get("lupa_version").map_err(map_err)?,
    }))
}

fn history_row(row: &SqliteRow) -> Result<HistoryEntry> {
    let from: String = row.try_get("from_environment").map_err(map_err)?;
    let to: String = row.try_get("to_environment").map_err(map_err)?;
    sql::history_entry(
        row.try_get("seq").map_err(map_err)?,
        row.try_get("deployment_id").map_err(map_err)?,
        &from,
        &to,
        time(row, "at")?,
    )
}

impl SqliteStore {
    /// Opens `sqlite://path` (created when missing) or `sqlite::memory:`
    /// and applies the migrations.
    pub async fn open(url: &str, config: &Config) -> Result<SqliteStore> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::invalid_argument(format!("store URL: {}", redact_text(&e.to_string()))))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(config.store_timeout);
        let pool = if in_memory {
            // Each connection to `:memory:` is its own database: keep exactly
            // one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(config.store_timeout)
                .connect_with(options)
                .await
        } else {
            SqlitePoolOptions::new()
                .max_connections(config.pool_size)
                .acquire_timeout(config.store_timeout)
                .connect_with(options.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal))
                .await
        }
        .map_err(map_err)?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)
    }

    async fn migrate(&self) -> Result<()> {
        // BEGIN IMMEDIATE takes the write lock: one migrator at a time.
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS lupa_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
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
            sqlx::query("INSERT INTO lupa_schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(format_timestamp(&now()))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}

async fn next_version(tx: &mut Transaction<'static, Sqlite>) -> Result<i64> {
    sqlx::query_scalar("UPDATE lupa_version_counter SET value = value + 1 WHERE id = 1 RETURNING value")
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_project(&self, project: &Project) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let version = next_version(&mut tx).await?;
        sqlx::query(
            "INSERT INTO project (id, org_id, name, created_at, updated_at, lupa_version) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(project.id.as_str())
        .bind(project.org_id.as_str())
        .bind(&project.name)
        .bind(format_timestamp(&project.created_at))
        .bind(format_timestamp(&project.updated_at))
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, Error::project_exists))?;
        tx.commit().await.map_err(map_err)?;
        Ok(version)
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT id, org_id, name, created_at, updated_at FROM project WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(project_row).transpose()
    }

    async fn list_projects(&self, after: Option<&ProjectId>, limit: u32) -> Result<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, created_at, updated_at FROM project WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
        )
        .bind(after.map(ProjectId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(project_row).collect()
    }

    async fn get_deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE id = ?")))
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
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE project_id = ?1 \
             AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
             ORDER BY created_at DESC, id DESC LIMIT ?4"
        )))
        .bind(project.as_str())
        .bind(after.map(|c| format_timestamp(&c.created_at)))
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
             WHERE project_id = ?1 AND (?2 IS NULL OR seq < ?2) ORDER BY seq DESC LIMIT ?3",
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
        let row = sqlx::query(
            "SELECT p.org_id, p.name, p.lupa_version, \
               (SELECT d.id FROM deployment d \
                 WHERE d.project_id = p.id AND d.environment = ?2 AND d.status = 'ready' \
                 ORDER BY d.created_at DESC, d.id DESC LIMIT 1) AS deployment_id \
             FROM project p WHERE p.id = ?1",
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
             LEFT JOIN project p ON p.id = ?1 \
             LEFT JOIN deployment d ON d.id = ?2 \
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
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT id, org_id, name, created_at, updated_at FROM project WHERE id = ?")
            .bind(project.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let project = project_row(&row)?;
        Ok(Some(Box::new(SqliteTx { tx, project })))
    }

    async fn pending_invalidations(&self, limit: u32) -> Result<Vec<PendingInvalidation>> {
        let rows = sqlx::query("SELECT id, payload FROM lupa_cache_outbox ORDER BY id LIMIT ?")
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
        // A JSON array keeps this one bound parameter, whatever the count.
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        sqlx::query("DELETE FROM lupa_cache_outbox WHERE id IN (SELECT value FROM json_each(?))")
            .bind(list)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    project: Project,
}

#[async_trait]
impl ProjectTx for SqliteTx {
    fn project(&self) -> &Project {
        &self.project
    }

    async fn deployment(&mut self, id: &DeploymentId) -> Result<Option<Deployment>> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE id = ?")))
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_err)?;
        row.as_ref().map(deployment_row).transpose()
    }

    async fn production(&mut self) -> Result<Option<Deployment>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE project_id = ? AND environment = 'production'"
        )))
        .bind(self.project.id.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_err)?;
        row.as_ref().map(deployment_row).transpose()
    }

    async fn deployment_ids(&mut self) -> Result<Vec<DeploymentId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM deployment WHERE project_id = ?")
            .bind(self.project.id.as_str())
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_err)?;
        ids.into_iter().map(sql::deployment_id).collect()
    }

    async fn insert_deployment(&mut self, d: &Deployment) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO deployment ({DEPLOYMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(d.id.as_str())
        .bind(d.project_id.as_str())
        .bind(d.snapshot_id.as_str())
        .bind(d.environment.as_str())
        .bind(d.status.as_str())
        .bind(format_timestamp(&d.created_at))
        .bind(format_timestamp(&d.updated_at))
        .bind(d.failure_message.as_deref())
        .bind(d.promote_when_ready)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| map_unique(e, Error::deployment_exists))?;
        Ok(())
    }

    async fn update_deployment(&mut self, d: &Deployment) -> Result<()> {
        sqlx::query(
            "UPDATE deployment SET environment = ?2, status = ?3, updated_at = ?4, failure_message = ?5, \
             promote_when_ready = ?6 WHERE id = ?1",
        )
        .bind(d.id.as_str())
        .bind(d.environment.as_str())
        .bind(d.status.as_str())
        .bind(format_timestamp(&d.updated_at))
        .bind(d.failure_message.as_deref())
        .bind(d.promote_when_ready)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| {
            map_unique(e, || Error::new(ErrorCode::ProductionConflict, "Another deployment is already production"))
        })?;
        Ok(())
    }

    async fn delete_deployment(&mut self, id: &DeploymentId) -> Result<()> {
        sqlx::query("DELETE FROM deployment WHERE id = ? AND project_id = ?")
            .bind(id.as_str())
            .bind(self.project.id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_project(&mut self) -> Result<()> {
        sqlx::query("DELETE FROM project WHERE id = ?")
            .bind(self.project.id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn production_history(&mut self, before: Option<i64>, limit: u32) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT seq, deployment_id, from_environment, to_environment, at FROM lupa_deployment_history \
             WHERE project_id = ?1 AND to_environment = 'production' AND (?2 IS NULL OR seq < ?2) \
             ORDER BY seq DESC LIMIT ?3",
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
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM lupa_deployment_history WHERE project_id = ?1 \
             RETURNING seq",
        )
        .bind(self.project.id.as_str())
        .bind(deployment.as_str())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(format_timestamp(&at))
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_err)
    }

    async fn bump_version(&mut self) -> Result<i64> {
        let version = next_version(&mut self.tx).await?;
        sqlx::query("UPDATE project SET lupa_version = ? WHERE id = ?")
            .bind(version)
            .bind(self.project.id.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(version)
    }

    async fn enqueue_invalidation(&mut self, invalidation: &Invalidation) -> Result<i64> {
        sqlx::query_scalar("INSERT INTO lupa_cache_outbox (payload, created_at) VALUES (?, ?) RETURNING id")
            .bind(sql::encode_invalidation(invalidation))
            .bind(format_timestamp(&now()))
            .fetch_one(&mut *self.tx)
            .await
            .map_err(map_err)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(map_err)
    }
}
