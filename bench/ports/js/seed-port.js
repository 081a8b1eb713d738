'use strict'
/*
 * The seed's deployment middleware, ported to plain JavaScript: the baseline
 * the Lupa library is measured against (issue 6). It is deliberately NOT
 * optimised: every await of the seed is an await here, in the same order,
 * on one `pg.Pool` and one `ioredis` client, so the benchmark shows what the
 * seed's design costs.
 *
 * Source: /work/shared/seed/deployments.md (line numbers below refer to it).
 * Reviewed line by line against the seed; where the seed is silent, the
 * choice is marked "seed silent" with the prose it follows.
 *
 * src/db/redis.ts (seed lines 200-295, key table 206-212)
 *   getProductionDeploymentId      218-226  GET project:{id}:production_deployment
 *   setProductionDeploymentId      231-241  SET ... EX 3600
 *   invalidateProductionDeployment 246-251  DEL project:{id}:production_deployment
 *   getStagingDeploymentId,
 *   setStagingDeploymentId,
 *   invalidateStagingDeployment    the same three for staging_deployment
 *                                  (key table line 210; called on 305, 451)
 *   validateDeploymentOwnership    256-269  GET deployment:{id}:project, null or
 *                                           another project -> false
 *   cacheDeploymentInfo            274-294  SET deployment:{id}:project EX 3600,
 *                                           then, if environment && status,
 *                                           SET deployment:{id}:info JSON EX 600
 *   invalidateDeploymentInfo       called on 306, 312, 452; body not shown:
 *                                  DEL deployment:{id}:info (its name, key 212)
 *   getProjectExists,
 *   cacheProjectExists             key table line 208 (JSON {org_id, name},
 *                                  30 min = 1800 s); functions not shown, named
 *                                  after the pattern of 218-241
 *   getDeploymentInfo              key table line 212; not shown, the reader of
 *                                  what cacheDeploymentInfo writes (288-292)
 *
 * src/proxy.ts resolveAndValidateDeployment (signature 90-95, flow 100-123,
 * caller 173-195), in this order:
 *   0. project existence: PROJECT_NOT_FOUND is one of its answers (193);
 *      seed silent on where, so first, as any lookup needs the project:
 *      GET project:{id}:exists; miss -> SELECT project; none -> 404;
 *      else SET project:{id}:exists (208)
 *   1. Deployment-Id given (101-102, 553-557): validateDeploymentOwnership;
 *      false -> query the database for the deployment, DEPLOYMENT_NOT_FOUND
 *      (623-633) when absent or of another project, else cacheDeploymentInfo
 *      (seed silent on the miss; the ownership cache is filled by
 *      cacheDeploymentInfo, 279-284, so that is what the miss path calls).
 *      When the route requires a deployment it must be ready (760-762):
 *      getDeploymentInfo; miss -> database -> cacheDeploymentInfo; status
 *      not ready -> DEPLOYMENT_NOT_READY. Then the id is the answer (103, 557).
 *   2. no Deployment-Id and the route requires none: valid, no deployment
 *      (the requiresDeployment parameter, 93)
 *   3. target environment as given by the middleware (105-108, 176-180)
 *   4. get{Production,Staging}DeploymentId (110-112); hit -> answer
 *   5. miss -> SELECT ... WHERE project_id AND environment AND status='ready'
 *      ORDER BY created_at DESC LIMIT 1 (114-119); none ->
 *      NO_PRODUCTION_DEPLOYMENT / NO_STAGING_DEPLOYMENT (579-612)
 *   6. set{Production,Staging}DeploymentId, 1 hour (121) -> answer (123)
 *
 * src/lib/deployment-promotion.ts updateDeploymentEnvironment (419-453):
 *   1. findMany deployments of the project in newEnvironment (427-432)
 *   2. for each: UPDATE environment = 'staging', one awaited statement each
 *      (435-439)
 *   3. UPDATE the target: environment, updated_at = now (442-447)
 *   4. invalidateProductionDeployment, invalidateStagingDeployment,
 *      invalidateDeploymentInfo(deploymentId), each an awaited DEL (450-452)
 *   No transaction and no checks: the seed shows none in this function (the
 *   endpoint's checks, 394-397, are not shown and are not part of the port,
 *   which only makes the port cheaper).
 *
 * Drizzle's `db.query.X.findMany/findFirst` selects every column of the
 * seed's table, so the queries here name those columns (not the library's
 * extra ones). The Upstash client of the seed (`redis.get<T>`, `{ex}`)
 * becomes ioredis (`get` + JSON.parse where the value is JSON, `'EX', n`).
 * The seed has no error handling around Redis calls in these functions; nor
 * does the port.
 */

const { Pool } = require('pg')
const Redis = require('ioredis')

const PROJECT_COLUMNS = 'id, org_id, name, created_at, updated_at'
const DEPLOYMENT_COLUMNS = 'id, project_id, snapshot_id, environment, status, created_at, updated_at'

function errorResult(code, message) {
  return { valid: false, error: { code, message } }
}

/**
 * Opens the port's one pg.Pool and one ioredis client (the seed's module
 * singletons `db` and `redis`). `schema` sets the search_path of every
 * pooled connection, so the seed's unqualified table names reach it.
 */
function createSeedPort({ databaseUrl, redisUrl, schema }) {
  const pool = new Pool({
    connectionString: databaseUrl,
    options: schema ? `-c search_path=${schema}` : undefined,
  })
  const redis = new Redis(redisUrl)

  // ---- src/db/redis.ts ----------------------------------------------------

  // seed 218-226
  async function getProductionDeploymentId(projectId) {
    return await redis.get(`project:${projectId}:production_deployment`)
  }

  // seed 231-241
  async function setProductionDeploymentId(projectId, deploymentId) {
    await redis.set(`project:${projectId}:production_deployment`, deploymentId, 'EX', 3600) // 1 hour
  }

  // seed 246-251
  async function invalidateProductionDeployment(projectId) {
    await redis.del(`project:${projectId}:production_deployment`)
  }

  // staging twins of the three above (key table 210; used on 305 and 451)
  async function getStagingDeploymentId(projectId) {
    return await redis.get(`project:${projectId}:staging_deployment`)
  }

  async function setStagingDeploymentId(projectId, deploymentId) {
    await redis.set(`project:${projectId}:staging_deployment`, deploymentId, 'EX', 3600) // 1 hour
  }

  async function invalidateStagingDeployment(projectId) {
    await redis.del(`project:${projectId}:staging_deployment`)
  }

  // seed 256-269
  async function validateDeploymentOwnership(projectId, deploymentId) {
    const cachedProjectId = await redis.get(`deployment:${deploymentId}:project`)

    if (cachedProjectId === null) return false
    if (cachedProjectId !== projectId) return false

    return true
  }

  // seed 274-294
  async function cacheDeploymentInfo(deploymentId, info) {
    // Cache ownership (long TTL)
    await redis.set(`deployment:${deploymentId}:project`, info.projectId, 'EX', 3600) // 1 hour

    // Cache metadata (short TTL)
    if (info.environment && info.status) {
      await redis.set(`deployment:${deploymentId}:info`, JSON.stringify(info), 'EX', 600) // 10 minutes
    }
  }

  // seed 212 (key), 288-292 (what is stored): the reader of the info key.
  // `redis.get<DeploymentInfo>` of the Upstash client parses JSON itself.
  async function getDeploymentInfo(deploymentId) {
    const raw = await redis.get(`deployment:${deploymentId}:info`)
    return raw === null ? null : JSON.parse(raw)
  }

  // seed 306, 312, 452 (calls); key 212
  async function invalidateDeploymentInfo(deploymentId) {
    await redis.del(`deployment:${deploymentId}:info`)
  }

  // seed 208: "Project existence and org_id", 30 min
  async function getProjectExists(projectId) {
    const raw = await redis.get(`project:${projectId}:exists`)
    return raw === null ? null : JSON.parse(raw)
  }

  async function cacheProjectExists(projectId, project) {
    await redis.set(
      `project:${projectId}:exists`,
      JSON.stringify({ org_id: project.org_id, name: project.name }),
      'EX',
      1800, // 30 minutes
    )
  }

  // ---- database reads (drizzle's db.query.* on the seed's tables) ---------

  async function findProject(projectId) {
    const { rows } = await pool.query(`SELECT ${PROJECT_COLUMNS} FROM project WHERE id = $1 LIMIT 1`, [projectId])
    return rows[0] ?? null
  }

  async function findDeployment(deploymentId) {
    const { rows } = await pool.query(`SELECT ${DEPLOYMENT_COLUMNS} FROM deployment WHERE id = $1 LIMIT 1`, [
      deploymentId,
    ])
    return rows[0] ?? null
  }

  // ---- src/proxy.ts -------------------------------------------------------

  // seed 90-123 (flow), 173-195 (caller), errors 579-633
  async function resolveAndValidateDeployment(projectId, requestedDeploymentId, requiresDeployment, targetEnvironment) {
    // 0. Project existence (PROJECT_NOT_FOUND, line 193; cache key 208).
    const cachedProject = await getProjectExists(projectId)
    if (cachedProject === null) {
      const project = await findProject(projectId)
      if (project === null) {
        return errorResult('PROJECT_NOT_FOUND', 'Project not found')
      }
      await cacheProjectExists(projectId, project)
    }

    // 1. Deployment-Id header provided -> validate it belongs to the project
    //    (101-102; "Must belong to project (validated)", 557).
    if (requestedDeploymentId) {
      const owned = await validateDeploymentOwnership(projectId, requestedDeploymentId)
      if (!owned) {
        // Seed silent on the miss: validateDeploymentOwnership only reads the
        // cache (261-268), whose entry cacheDeploymentInfo writes (279-284);
        // the prose "Validate deployment belongs to project" (102) and
        // "Cache miss -> Query database" (112) imply: ask the database, then
        // cacheDeploymentInfo.
        const deployment = await findDeployment(requestedDeploymentId)
        if (deployment === null || deployment.project_id !== projectId) {
          return errorResult('DEPLOYMENT_NOT_FOUND', 'Deployment not found or does not belong to this project')
        }
        await cacheDeploymentInfo(requestedDeploymentId, {
          projectId: deployment.project_id,
          environment: deployment.environment,
          status: deployment.status,
        })
      }
      if (requiresDeployment) {
        // "Deployments must have status = ready to be queried" (762): the
        // status comes from the deployment metadata cache (212, 286-292),
        // read like every other cache of the seed, database on a miss.
        let info = await getDeploymentInfo(requestedDeploymentId)
        if (info === null) {
          const deployment = await findDeployment(requestedDeploymentId)
          if (deployment === null || deployment.project_id !== projectId) {
            return errorResult('DEPLOYMENT_NOT_FOUND', 'Deployment not found or does not belong to this project')
          }
          info = { projectId: deployment.project_id, environment: deployment.environment, status: deployment.status }
          await cacheDeploymentInfo(requestedDeploymentId, info)
        }
        if (info.status !== 'ready') {
          return errorResult('DEPLOYMENT_NOT_READY', 'Deployment is not ready to be queried')
        }
      }
      // "Skip auto-resolution", "Use stg9876543_456" (163-166)
      return { valid: true, deploymentId: requestedDeploymentId }
    }

    // The route needs no deployment and named none (requiresDeployment, 93).
    if (!requiresDeployment) {
      return { valid: true, deploymentId: null }
    }

    // 2. Target environment: the middleware passes it (176-187); an internal
    //    token without one means production (108).
    const environment = targetEnvironment ?? 'production'

    // 3. Check Redis cache (110-112).
    const cached =
      environment === 'production' ? await getProductionDeploymentId(projectId) : await getStagingDeploymentId(projectId)
    if (cached !== null) {
      return { valid: true, deploymentId: cached }
    }

    // 4. Query database for deployment (114-119).
    const { rows } = await pool.query(
      `SELECT ${DEPLOYMENT_COLUMNS} FROM deployment
        WHERE project_id = $1 AND environment = $2 AND status = 'ready'
        ORDER BY created_at DESC LIMIT 1`,
      [projectId, environment],
    )
    const deployment = rows[0]
    if (!deployment) {
      return environment === 'production'
        ? errorResult(
            'NO_PRODUCTION_DEPLOYMENT',
            'No production deployment found. Please specify Deployment-Id header.',
          )
        : errorResult('NO_STAGING_DEPLOYMENT', 'No staging deployment found. Please specify Deployment-Id header.')
    }

    // 5. Cache result (TTL: 1 hour) (121).
    if (environment === 'production') {
      await setProductionDeploymentId(projectId, deployment.id)
    } else {
      await setStagingDeploymentId(projectId, deployment.id)
    }

    // 6. Return deployment ID (123).
    return { valid: true, deploymentId: deployment.id }
  }

  // ---- src/lib/deployment-promotion.ts (seed 419-453) ---------------------

  async function updateDeploymentEnvironment(projectId, deploymentId, newEnvironment) {
    // 1. Get current production/staging deployment (426-432)
    const { rows: currentDeployments } = await pool.query(
      `SELECT ${DEPLOYMENT_COLUMNS} FROM deployment WHERE project_id = $1 AND environment = $2`,
      [projectId, newEnvironment],
    )

    // 2. Demote current deployments to staging (434-439)
    for (const deployment of currentDeployments) {
      await pool.query(`UPDATE deployment SET environment = $1 WHERE id = $2`, ['staging', deployment.id])
    }

    // 3. Promote target deployment (441-447)
    await pool.query(`UPDATE deployment SET environment = $1, updated_at = $2 WHERE id = $3`, [
      newEnvironment,
      new Date().toISOString(),
      deploymentId,
    ])

    // 4. Invalidate caches (449-452)
    await invalidateProductionDeployment(projectId)
    await invalidateStagingDeployment(projectId)
    await invalidateDeploymentInfo(deploymentId)
  }

  async function close() {
    await pool.end()
    redis.disconnect()
  }

  return {
    pool,
    redis,
    resolveAndValidateDeployment,
    updateDeploymentEnvironment,
    close,
    // the cache functions, for tests and tooling
    getProductionDeploymentId,
    setProductionDeploymentId,
    invalidateProductionDeployment,
    getStagingDeploymentId,
    setStagingDeploymentId,
    invalidateStagingDeployment,
    validateDeploymentOwnership,
    cacheDeploymentInfo,
    getDeploymentInfo,
    invalidateDeploymentInfo,
    getProjectExists,
    cacheProjectExists,
  }
}

/** The seed's keys of one project and the deployments named, for cold runs. */
function seedKeys(projectId, deploymentIds = []) {
  const keys = [
    `project:${projectId}:exists`,
    `project:${projectId}:production_deployment`,
    `project:${projectId}:staging_deployment`,
  ]
  for (const id of deploymentIds) {
    keys.push(`deployment:${id}:project`, `deployment:${id}:info`)
  }
  return keys
}

module.exports = { createSeedPort, seedKeys }
