'use strict'
// The Next.js example (examples/nextjs): install it from its lockfile, build
// it (webpack, offline: no telemetry, no fonts), start it on a loopback
// port, send real HTTP requests with live and test keys and a Deployment-Id,
// check the answers, stop it. Never skipped under CI=true.

const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const net = require('node:net')
const { spawn } = require('node:child_process')
const { Lupa } = require('lupa-core')
const { postgres, redis, unique, root, ci } = require('./support')

const app = path.join(root, 'examples', 'nextjs')
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', CI: process.env.CI ?? '' }

const LIVE = 'lupa_sk_live_nextjsexampleKEY'
const TEST = 'lupa_pk_test_nextjsexampleKEY'

/** Runs a command to its end within `timeoutMs`; rejects with its output on failure. */
function run(cmd, args, options, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
      reject(new Error(`${cmd} ${args.join(' ')} took longer than ${timeoutMs} ms:\n${output.slice(-4000)}`))
    }, timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}:\n${output.slice(-4000)}`))
    })
  })
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
    server.once('error', reject)
  })
}

/** One HTTP request to the server, with the Host header of a project subdomain. */
function get(port, pathname, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, headers, timeout: 20_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }))
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${pathname} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

async function waitUntilReady(port, server, deadline) {
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`next start exited ${server.exitCode}`)
    try {
      await get(port, '/', {})
      return
    } catch {
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  throw new Error('next start did not answer in time')
}

test('the Next.js example resolves deployments in its Node.js middleware', { timeout: 8 * 60_000 }, async (t) => {
  // The backend both processes share: PostgreSQL + Redis (required under CI),
  // or an SQLite file without a cache where they are not running.
  const [db, cache] = [await postgres(), await redis()]
  const tag = unique('lupa_node_next')
  const dbFile = path.join(os.tmpdir(), `${tag}.db`)
  const options = db && cache
    ? { store: db, cache, schema: tag, keyPrefix: `${tag}:` }
    : { store: `sqlite://${dbFile}?mode=rwc`, cache: 'none' }
  if (!(db && cache)) {
    assert.ok(!ci, 'CI=true requires PostgreSQL and Redis')
    t.diagnostic('PostgreSQL or Redis is not reachable: the example runs on an SQLite file')
  }

  await run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, env }, 4 * 60_000)
  await run(process.execPath, [path.join(app, 'node_modules', 'next', 'dist', 'bin', 'next'), 'build'], { cwd: app, env }, 5 * 60_000)

  const lupa = await Lupa.open(options)
  let server
  try {
    await lupa.createProject({ id: 'abc1234567', orgId: 'org_1', name: 'Docs' })
    for (const id of ['prod000001', 'stag000001', 'next000001', 'proc000001']) {
      await lupa.createDeployment({ project: 'abc1234567', id, snapshot: 'snp0000001' })
    }
    for (const id of ['prod000001', 'stag000001', 'next000001']) await lupa.setStatus(id, 'ready')
    await lupa.promote('abc1234567', 'prod000001')

    const port = await freePort()
    server = spawn(
      process.execPath,
      [path.join(app, 'node_modules', 'next', 'dist', 'bin', 'next'), 'start', '-p', String(port), '-H', '127.0.0.1'],
      {
        cwd: app,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...env,
          LUPA_STORE: options.store,
          LUPA_CACHE: options.cache,
          LUPA_SCHEMA: options.schema ?? '',
          LUPA_KEY_PREFIX: options.keyPrefix ?? '',
          LUPA_ROOT_DOMAIN: 'localhost',
        },
      },
    )
    let log = ''
    server.stdout.on('data', (d) => (log += d))
    server.stderr.on('data', (d) => (log += d))
    await waitUntilReady(port, server, Date.now() + 60_000)

    const host = `abc1234567.localhost:${port}`
    const search = (headers, q = 'pricing') => get(port, `/api/search?q=${q}`, { host, ...headers })
    const json = (r) => ({ status: r.status, body: JSON.parse(r.body) })

    try {
      // A live key reaches production, a test key the newest ready staging.
      assert.deepStrictEqual(json(await search({ authorization: `Bearer ${LIVE}` })), {
        status: 200,
        body: { projectId: 'abc1234567', deploymentId: 'prod000001', query: 'pricing' },
      })
      assert.strictEqual(json(await search({ authorization: `Bearer ${TEST}` })).body.deploymentId, 'next000001')
      // Deployment-Id picks one explicitly, whatever the key.
      assert.strictEqual(
        json(await search({ authorization: `Bearer ${TEST}`, 'deployment-id': 'stag000001' })).body.deploymentId,
        'stag000001',
      )
      // A forged forwarding header is replaced.
      const forged = await search({ authorization: `Bearer ${LIVE}`, 'x-lupa-deployment-id': 'evil' })
      assert.strictEqual(json(forged).body.deploymentId, 'prod000001')
      // Errors: status and JSON body of the error table.
      const error = (code, message) => ({ error: { code, message } })
      const bad = await search({ authorization: 'Bearer not-a-key' })
      assert.deepStrictEqual(json(bad), { status: 403, body: error('INVALID_API_KEY', 'API Key is not valid') })
      assert.match(bad.type, /application\/json/)
      assert.strictEqual(json(await search({})).status, 403)
      assert.deepStrictEqual(json(await get(port, '/api/search', { host: `nope000001.localhost:${port}`, authorization: `Bearer ${LIVE}` })), {
        status: 404,
        body: error('PROJECT_NOT_FOUND', 'Project not found'),
      })
      assert.deepStrictEqual(json(await search({ authorization: `Bearer ${LIVE}`, 'deployment-id': 'miss000001' })), {
        status: 404,
        body: error('DEPLOYMENT_NOT_FOUND', 'Deployment not found or does not belong to this project'),
      })
      assert.deepStrictEqual(json(await search({ authorization: `Bearer ${LIVE}`, 'deployment-id': 'proc000001' })), {
        status: 400,
        body: error('DEPLOYMENT_NOT_READY', 'Deployment is not ready to be queried'),
      })
      const noSubdomain = await get(port, '/api/search', { host: `localhost:${port}`, authorization: `Bearer ${LIVE}` })
      assert.strictEqual(json(noSubdomain).status, 400)
      assert.strictEqual(json(noSubdomain).body.error.code, 'INVALID_ARGUMENT')
      // A route without a deployment.
      assert.deepStrictEqual(json(await get(port, '/api/status', { host, authorization: `Bearer ${LIVE}` })), {
        status: 200,
        body: { projectId: 'abc1234567', deploymentId: null },
      })
      // A promotion made by this process is what the server answers next.
      await lupa.promote('abc1234567', 'next000001')
      assert.strictEqual(json(await search({ authorization: `Bearer ${LIVE}` })).body.deploymentId, 'next000001')
      // Many requests at once share the server's one handle.
      const many = await Promise.all(Array.from({ length: 50 }, () => search({ authorization: `Bearer ${LIVE}` })))
      for (const r of many) assert.strictEqual(json(r).body.deploymentId, 'next000001')
    } catch (e) {
      e.message += `\n--- next start output ---\n${log.slice(-4000)}`
      throw e
    }
  } finally {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve))
      process.kill(-server.pid, 'SIGTERM')
      const timer = setTimeout(() => {
        try {
          process.kill(-server.pid, 'SIGKILL')
        } catch {}
      }, 5000)
      await exited
      clearTimeout(timer)
    }
    await lupa.dropStorage().catch(() => {})
    await lupa.cacheProbe()?.clear().catch(() => {})
    await lupa.close()
    fs.rmSync(dbFile, { force: true })
  }
})
