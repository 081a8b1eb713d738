'use strict'
// worker_threads, process exit after close(), and loading from ESM; each in
// its own Node process so that a crash at shutdown is seen as one.

const test = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { postgres, redis, unique } = require('./support')

function node(args, env = {}, timeout = 60_000) {
  const r = spawnSync(process.execPath, args, {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout,
  })
  return r
}

function assertClean(r, what) {
  assert.strictEqual(r.error, undefined, `${what}: ${r.error}`)
  assert.strictEqual(r.signal, null, `${what} died of ${r.signal}:\n${r.stderr}`)
  assert.strictEqual(r.status, 0, `${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`)
}

for (const mode of ['close', 'no-close', 'inflight']) {
  test(`the addon loaded only in worker threads that exit (${mode}): no crash`, async () => {
    const r = node([path.join(__dirname, 'fixtures', 'worker-only.js'), mode])
    assertClean(r, 'worker-only')
    assert.match(r.stdout, /workers ok: 7/)
    const [db, cache] = [await postgres(), await redis()]
    if (!db || !cache) return
    const tag = unique('lupa_node')
    const options = { store: db, cache, schema: tag, keyPrefix: `${tag}:` }
    const pg = node([path.join(__dirname, 'fixtures', 'worker-only.js'), mode], {
      LUPA_WORKER_OPTIONS: JSON.stringify(options),
    })
    const { Lupa } = require('lupa-core')
    const cleanup = await Lupa.open(options)
    await cleanup.dropStorage()
    await cleanup.cacheProbe().clear()
    await cleanup.close()
    assertClean(pg, 'worker-only on PostgreSQL + Redis')
    assert.match(pg.stdout, /workers ok: 7/)
  })
}

test('worker threads on PostgreSQL + Redis beside handles of the main thread', async (t) => {
  const [db, cache] = [await postgres(), await redis()]
  if (!db || !cache) return t.skip('PostgreSQL or Redis is not reachable')
  const { Worker } = require('node:worker_threads')
  const { Lupa } = require('lupa-core')
  const tag = unique('lupa_node')
  const options = { store: db, cache, schema: tag, keyPrefix: `${tag}:` }
  const main = await Lupa.open(options)
  try {
    await main.createProject({ id: 'wrk0000001', orgId: 'o', name: 'worker' })
    await main.createDeployment({ project: 'wrk0000001', id: 'dep0000001', snapshot: 's' })
    await main.setStatus('dep0000001', 'ready')
    await main.promote('wrk0000001', 'dep0000001')
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { Lupa } = require('lupa-core')
      ;(async () => {
        const lupa = await Lupa.open(workerData)
        const answers = await Promise.all(Array.from({ length: 50 }, () =>
          lupa.resolve({ project: 'wrk0000001', apiKeyEnvironment: 'live' })))
        await lupa.close()
        parentPort.postMessage(answers.map((a) => a.deployment))
      })()`
    const results = await Promise.all(
      Array.from({ length: 3 }, () => {
        const w = new Worker(source, { eval: true, workerData: options })
        return new Promise((resolve, reject) => {
          w.once('message', resolve)
          w.once('error', reject)
        })
      }),
    )
    for (const r of results) assert.deepStrictEqual(new Set(r), new Set(['dep0000001']))
    // The main thread's handle still works after the workers are gone.
    assert.strictEqual((await main.resolve({ project: 'wrk0000001', apiKeyEnvironment: 'live' })).deployment, 'dep0000001')
  } finally {
    await main.dropStorage().catch(() => {})
    await main.cacheProbe()?.clear().catch(() => {})
    await main.close()
  }
})

test('close() releases the handle and lets the process exit', async () => {
  const pairs = [{ store: 'sqlite::memory:', cache: 'memory://' }]
  const [db, cache] = [await postgres(), await redis()]
  if (db && cache) {
    const tag = unique('lupa_node')
    pairs.push({ store: db, cache, schema: tag, keyPrefix: `${tag}:` })
  }
  for (const options of pairs) {
    const started = Date.now()
    const r = node([path.join(__dirname, 'fixtures', 'close-exits.js')], { LUPA_EXIT_OPTIONS: JSON.stringify(options) }, 20_000)
    assertClean(r, `close-exits on ${options.store.split(':')[0]}`)
    assert.match(r.stdout, /closed/)
    assert.ok(Date.now() - started < 15_000)
  }
})

test('ESM: named imports and a default import', () => {
  const r = node(['--input-type=module', '-e', `
    import { Lupa, parseApiKey, projectFromHost, errorCodes } from 'lupa-core'
    import lupaCore from 'lupa-core'
    const lupa = await Lupa.open({ store: 'memory://' })
    await lupa.createProject({ id: 'esm0000001', orgId: 'o', name: 'esm' })
    const p = await lupa.getProject('esm0000001')
    await lupa.close()
    if (lupaCore.Lupa !== Lupa) throw new Error('default and named exports differ')
    console.log(p.id, parseApiKey('lupa_sk_test_x').environment, projectFromHost('a1.localhost', 'localhost'), errorCodes().length)
  `])
  assertClean(r, 'esm')
  assert.strictEqual(r.stdout.trim(), 'esm0000001 test a1 15')
})

test('the ten-line example of the README runs', () => {
  const readme = require('node:fs').readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
  const block = readme.split('## Ten lines')[1].split('```js')[1].split('```')[0]
  const source = block.replace(
    "{ store: 'postgres://user@db/app', cache: 'redis://cache:6379' }",
    "{ store: 'sqlite::memory:', cache: 'memory://' }",
  )
  assert.notStrictEqual(source, block, 'the example opens the store the test replaces')
  const r = node(['--input-type=module', '-e', source])
  assertClean(r, 'README example')
  assert.strictEqual(r.stdout.trim(), 'def4567890')
})
