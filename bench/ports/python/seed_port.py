"""The seed's deployment middleware, ported to synchronous Python.

The Python baseline the Lupa module is measured against (issue 6): the same
algorithm as ``bench/ports/js/seed-port.js``, call for call and in the same
order, on one psycopg ``ConnectionPool`` (autocommit, like node-postgres:
every statement its own implicit transaction) and one redis-py client. It is
deliberately NOT optimised: each Redis and SQL call of the seed is one
blocking round trip here.

Source: /work/shared/seed/deployments.md (line numbers below refer to it).
Reviewed line by line against the seed; where the seed is silent, the choice
is marked "seed silent" with the prose it follows.

src/db/redis.ts (seed lines 200-295, key table 206-212)
  get_production_deployment_id      218-226  GET project:{id}:production_deployment
  set_production_deployment_id      231-241  SET ... EX 3600
  invalidate_production_deployment  246-251  DEL project:{id}:production_deployment
  get/set/invalidate_staging_*      the same for staging_deployment (210; 305, 451)
  validate_deployment_ownership     256-269  GET deployment:{id}:project; None or
                                             another project -> False
  cache_deployment_info             274-294  SET deployment:{id}:project EX 3600,
                                             then, if environment and status,
                                             SET deployment:{id}:info JSON EX 600
  invalidate_deployment_info        called on 306, 312, 452; body not shown:
                                    DEL deployment:{id}:info (key 212)
  get_project_exists,
  cache_project_exists              key table 208 (JSON {org_id, name}, 1800 s);
                                    not shown, named after 218-241
  get_deployment_info               key 212; the reader of 288-292

src/proxy.ts resolveAndValidateDeployment (90-123, caller 173-195):
  0. project existence (PROJECT_NOT_FOUND, 193; seed silent on where: first):
     GET project:{id}:exists; miss -> SELECT project; none -> 404; else SET
  1. Deployment-Id (101-102, 553-557): validate_deployment_ownership; False ->
     database, DEPLOYMENT_NOT_FOUND when absent or of another project, else
     cache_deployment_info (seed silent on the miss; 279-284 is what fills the
     ownership cache). Route requires a deployment: it must be ready (762):
     get_deployment_info; miss -> database -> cache_deployment_info; not
     ready -> DEPLOYMENT_NOT_READY. Then the id is the answer.
  2. no Deployment-Id, route requires none: valid, no deployment (93)
  3. target environment from the middleware (105-108, 176-180)
  4. get_{production,staging}_deployment_id (110-112); hit -> answer
  5. miss -> SELECT ... status = 'ready' ORDER BY created_at DESC LIMIT 1
     (114-119); none -> NO_PRODUCTION_DEPLOYMENT / NO_STAGING_DEPLOYMENT
  6. set_{production,staging}_deployment_id, 1 hour (121) -> answer (123)

src/lib/deployment-promotion.ts updateDeploymentEnvironment (419-453):
  1. find the project's deployments in new_environment (427-432)
  2. demote each to staging, one statement each (435-439)
  3. promote the target: environment, updated_at = now (442-447)
  4. invalidate production, staging, deployment info: three DELs (450-452)
  No transaction and no checks, as the seed shows none there.

The queries select the seed's columns (drizzle's ``db.query`` selects every
column of the seed's table). The seed has no error handling around Redis
calls in these functions; nor does the port.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import redis
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

PROJECT_COLUMNS = "id, org_id, name, created_at, updated_at"
DEPLOYMENT_COLUMNS = "id, project_id, snapshot_id, environment, status, created_at, updated_at"


def _json(value: Any) -> str:
    """JSON.stringify's bytes (no spaces), so both ports write the same values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"valid": False, "error": {"code": code, "message": message}}


class SeedPort:
    """The seed's module singletons ``db`` (one pool) and ``redis`` (one
    client) and its functions. ``schema`` sets the search_path of every
    pooled connection, so the seed's unqualified table names reach it."""

    def __init__(self, database_url: str, redis_url: str, schema: str | None = None, pool_size: int = 10) -> None:
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if schema:
            kwargs["options"] = f"-c search_path={schema}"
        # pool_size 10: node-postgres' pg.Pool default, so both ports match.
        self.pool = ConnectionPool(database_url, kwargs=kwargs, min_size=1, max_size=pool_size, open=True)
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def close(self) -> None:
        self.pool.close()
        self.redis.close()

    # ---- src/db/redis.ts ------------------------------------------------

    def get_production_deployment_id(self, project_id: str) -> str | None:  # 218-226
        return self.redis.get(f"project:{project_id}:production_deployment")

    def set_production_deployment_id(self, project_id: str, deployment_id: str) -> None:  # 231-241
        self.redis.set(f"project:{project_id}:production_deployment", deployment_id, ex=3600)  # 1 hour

    def invalidate_production_deployment(self, project_id: str) -> None:  # 246-251
        self.redis.delete(f"project:{project_id}:production_deployment")

    def get_staging_deployment_id(self, project_id: str) -> str | None:  # 210
        return self.redis.get(f"project:{project_id}:staging_deployment")

    def set_staging_deployment_id(self, project_id: str, deployment_id: str) -> None:  # 210
        self.redis.set(f"project:{project_id}:staging_deployment", deployment_id, ex=3600)  # 1 hour

    def invalidate_staging_deployment(self, project_id: str) -> None:  # 305, 451
        self.redis.delete(f"project:{project_id}:staging_deployment")

    def validate_deployment_ownership(self, project_id: str, deployment_id: str) -> bool:  # 256-269
        cached_project_id = self.redis.get(f"deployment:{deployment_id}:project")

        if cached_project_id is None:
            return False
        if cached_project_id != project_id:
            return False

        return True

    def cache_deployment_info(self, deployment_id: str, info: dict[str, Any]) -> None:  # 274-294
        # Cache ownership (long TTL)
        self.redis.set(f"deployment:{deployment_id}:project", info["projectId"], ex=3600)  # 1 hour

        # Cache metadata (short TTL)
        if info.get("environment") and info.get("status"):
            self.redis.set(f"deployment:{deployment_id}:info", _json(info), ex=600)  # 10 minutes

    def get_deployment_info(self, deployment_id: str) -> dict[str, Any] | None:  # 212, 288-292
        raw = self.redis.get(f"deployment:{deployment_id}:info")
        return None if raw is None else json.loads(raw)

    def invalidate_deployment_info(self, deployment_id: str) -> None:  # 306, 312, 452
        self.redis.delete(f"deployment:{deployment_id}:info")

    def get_project_exists(self, project_id: str) -> dict[str, Any] | None:  # 208
        raw = self.redis.get(f"project:{project_id}:exists")
        return None if raw is None else json.loads(raw)

    def cache_project_exists(self, project_id: str, project: dict[str, Any]) -> None:  # 208, 30 min
        self.redis.set(
            f"project:{project_id}:exists",
            _json({"org_id": project["org_id"], "name": project["name"]}),
            ex=1800,
        )

    # ---- database reads --------------------------------------------------

    def _fetchone(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchone()

    def _fetchall(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        with self.pool.connection() as conn:
            conn.execute(sql, params)

    def _find_project(self, project_id: str) -> dict[str, Any] | None:
        return self._fetchone(f"SELECT {PROJECT_COLUMNS} FROM project WHERE id = %s LIMIT 1", (project_id,))

    def _find_deployment(self, deployment_id: str) -> dict[str, Any] | None:
        return self._fetchone(f"SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE id = %s LIMIT 1", (deployment_id,))

    # ---- src/proxy.ts ------------------------------------------------------

    def resolve_and_validate_deployment(  # 90-123, caller 173-195
        self,
        project_id: str,
        requested_deployment_id: str | None,
        requires_deployment: bool,
        target_environment: str | None = None,
    ) -> dict[str, Any]:
        # 0. Project existence (PROJECT_NOT_FOUND, line 193; cache key 208).
        cached_project = self.get_project_exists(project_id)
        if cached_project is None:
            project = self._find_project(project_id)
            if project is None:
                return _error("PROJECT_NOT_FOUND", "Project not found")
            self.cache_project_exists(project_id, project)

        # 1. Deployment-Id provided -> validate it belongs to the project (101-102, 557).
        if requested_deployment_id:
            owned = self.validate_deployment_ownership(project_id, requested_deployment_id)
            if not owned:
                # Seed silent on the miss: validateDeploymentOwnership only reads
                # the cache (261-268) that cacheDeploymentInfo fills (279-284);
                # "Validate deployment belongs to project" (102) and "Cache miss
                # -> Query database" (112) imply: database, then cacheDeploymentInfo.
                deployment = self._find_deployment(requested_deployment_id)
                if deployment is None or deployment["project_id"] != project_id:
                    return _error("DEPLOYMENT_NOT_FOUND", "Deployment not found or does not belong to this project")
                self.cache_deployment_info(
                    requested_deployment_id,
                    {
                        "projectId": deployment["project_id"],
                        "environment": deployment["environment"],
                        "status": deployment["status"],
                    },
                )
            if requires_deployment:
                # "Deployments must have status = ready to be queried" (762):
                # the status comes from the metadata cache (212, 286-292),
                # database on a miss.
                info = self.get_deployment_info(requested_deployment_id)
                if info is None:
                    deployment = self._find_deployment(requested_deployment_id)
                    if deployment is None or deployment["project_id"] != project_id:
                        return _error(
                            "DEPLOYMENT_NOT_FOUND", "Deployment not found or does not belong to this project"
                        )
                    info = {
                        "projectId": deployment["project_id"],
                        "environment": deployment["environment"],
                        "status": deployment["status"],
                    }
                    self.cache_deployment_info(requested_deployment_id, info)
                if info["status"] != "ready":
                    return _error("DEPLOYMENT_NOT_READY", "Deployment is not ready to be queried")
            return {"valid": True, "deploymentId": requested_deployment_id}

        # The route needs no deployment and named none (requiresDeployment, 93).
        if not requires_deployment:
            return {"valid": True, "deploymentId": None}

        # 2. Target environment from the middleware (176-187); internal without one: production (108).
        environment = target_environment or "production"

        # 3. Check Redis cache (110-112).
        if environment == "production":
            cached = self.get_production_deployment_id(project_id)
        else:
            cached = self.get_staging_deployment_id(project_id)
        if cached is not None:
            return {"valid": True, "deploymentId": cached}

        # 4. Query database for deployment (114-119).
        deployment = self._fetchone(
            f"SELECT {DEPLOYMENT_COLUMNS} FROM deployment"
            " WHERE project_id = %s AND environment = %s AND status = 'ready'"
            " ORDER BY created_at DESC LIMIT 1",
            (project_id, environment),
        )
        if deployment is None:
            if environment == "production":
                return _error(
                    "NO_PRODUCTION_DEPLOYMENT", "No production deployment found. Please specify Deployment-Id header."
                )
            return _error("NO_STAGING_DEPLOYMENT", "No staging deployment found. Please specify Deployment-Id header.")

        # 5. Cache result (TTL: 1 hour) (121).
        if environment == "production":
            self.set_production_deployment_id(project_id, deployment["id"])
        else:
            self.set_staging_deployment_id(project_id, deployment["id"])

        # 6. Return deployment ID (123).
        return {"valid": True, "deploymentId": deployment["id"]}

    # ---- src/lib/deployment-promotion.ts (419-453) -------------------------

    def update_deployment_environment(self, project_id: str, deployment_id: str, new_environment: str) -> None:
        # 1. Get current production/staging deployment (426-432)
        current_deployments = self._fetchall(
            f"SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE project_id = %s AND environment = %s",
            (project_id, new_environment),
        )

        # 2. Demote current deployments to staging (434-439)
        for deployment in current_deployments:
            self._execute("UPDATE deployment SET environment = %s WHERE id = %s", ("staging", deployment["id"]))

        # 3. Promote target deployment (441-447)
        self._execute(
            "UPDATE deployment SET environment = %s, updated_at = %s WHERE id = %s",
            (new_environment, datetime.now(timezone.utc).isoformat(), deployment_id),
        )

        # 4. Invalidate caches (449-452)
        self.invalidate_production_deployment(project_id)
        self.invalidate_staging_deployment(project_id)
        self.invalidate_deployment_info(deployment_id)


def seed_keys(project_id: str, deployment_ids: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The seed's keys of one project and the deployments named, for cold runs."""
    keys = [
        f"project:{project_id}:exists",
        f"project:{project_id}:production_deployment",
        f"project:{project_id}:staging_deployment",
    ]
    for d in deployment_ids:
        keys += [f"deployment:{d}:project", f"deployment:{d}:info"]
    return keys
