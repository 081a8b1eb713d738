'use strict'
// The handle's API from CommonJS: results, coded errors, several handles,
// and bad input that must end as a TypeError or a coded Error, never a crash.

const test = require('node:test')
const assert = require('node:assert')
const { Lupa, parseApiKey, errorCodes } = require('lupa-core')

const codes = new Set(errorCodes().map((c) => c.code))
const typeError = (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE' && e.message.length > 0
const coded = (code) => (e) =>
  e instanceof Error && e.code === code && typeof e.httpStatus === 'number' && typeof e.message === 'string'

test('a full lifecycle through the public API', async () => {
  const lupa = await Lupa.open({ store: 'memory://', cache: 'memory://' })
  try {
    const p = await lupa.createProject({ id: 'abc1234567', orgId: 'org_1', name: 'Docs' })
    assert.deepStrictEqual([p.id, p.orgId, p.name], ['abc1234567', 'org_1', 'Docs'])
    assert.match(p.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    const generated = await lupa.createProject({ orgId: 'org_1', name: 'Generated' })
    assert.match(generated.id, /^[a-z0-9]{10}$/)

    const created = await lupa.createDeployment({
      project: 'abc1234567',
      id: 'dep0000001',
      snapshot: 'snp0000001',
      createdAt: new Date('2025-01-01T00:00:00.000Z'),
    })
    assert.strictEqual(created.cachePending, false)
    assert.strictEqual(created.deployment.status, 'processing')
    assert.strictEqual(created.deployment.createdAt, '2025-01-01T00:00:00.000000Z')
    await lupa.createDeployment({
      project: 'abc1234567',
      id: 'dep0000002',
      snapshot: 'snp0000001',
      createdAt: '2025-01-02T00:00:00+02:00',
    })
    const failed = await lupa.createDeployment({ project: 'abc1234567', id: 'dep0000003', snapshot: 's' })
    assert.strictEqual((await lupa.setStatus('dep0000003', 'failed', 'disk full')).deployment.failureMessage, 'disk full')
    assert.strictEqual(failed.deployment.failureMessage, null)
    await lupa.setStatus('dep0000001', 'ready')
    await lupa.setStatus('dep0000002', 'ready', null)

    const first = await lupa.promote('abc1234567', 'dep0000001')
    assert.deepStrictEqual(first, {
      success: true,
      deployment: { id: 'dep0000001', environment: 'production', status: 'ready' },
      demoted: null,
      cachePending: false,
    })
    const second = await lupa.promote('abc1234567', 'dep0000002')
    assert.strictEqual(second.demoted, 'dep0000001')
    assert.strictEqual((await lupa.rollback('abc1234567')).deployment.id, 'dep0000001')
    assert.deepStrictEqual(await lupa.resolve({ project: 'abc1234567', apiKeyEnvironment: 'live' }), {
      deployment: 'dep0000001',
      source: 'store',
    })
    // The second answer comes from process memory (the in-process tier).
    assert.deepStrictEqual(await lupa.resolve({ project: 'abc1234567', apiKeyEnvironment: 'live' }), {
      deployment: 'dep0000001',
      source: 'local',
    })
    const viaKey = await lupa.resolve({ project: 'abc1234567', apiKey: 'lupa_sk_test_xyz' })
    assert.strictEqual(viaKey.deployment, 'dep0000002')
    const internal = await lupa.resolve({ project: 'abc1234567', internal: true, targetEnvironment: 'staging' })
    assert.strictEqual(internal.deployment, 'dep0000002')

    const history = await lupa.history('abc1234567', { limit: 2 })
    assert.strictEqual(history.items.length, 2)
    assert.strictEqual(typeof history.nextCursor, 'string')
    const rest = await lupa.history('abc1234567', { cursor: history.nextCursor })
    assert.ok(rest.items.length >= 1)

    const page = await lupa.listDeployments('abc1234567', { limit: 2 })
    assert.deepStrictEqual(
      page.items.map((d) => d.id),
      ['dep0000003', 'dep0000002'],
    )
    const next = await lupa.listDeployments('abc1234567', { cursor: page.nextCursor })
    assert.deepStrictEqual(
      next.items.map((d) => d.id),
      ['dep0000001'],
    )
    assert.strictEqual(next.nextCursor, null)

    const env = await lupa.setEnvironment('abc1234567', 'dep0000001', 'staging')
    assert.strictEqual(env.deployment.environment, 'staging')
    assert.strictEqual((await lupa.deleteDeployment('abc1234567', 'dep0000001')).deployment.id, 'dep0000001')
    assert.strictEqual((await lupa.listProjects()).items.length, 2)
    assert.deepStrictEqual(await lupa.deleteProject(generated.id), { cachePending: false })
    const health = await lupa.health()
    assert.strictEqual(health.store.state, 'ok')
    assert.strictEqual(health.breaker, 'closed')
    assert.strictEqual(await lupa.applyPendingCacheUpdates(), 0)
    const probe = lupa.cacheProbe()
    await probe.set('project:x:exists', '{}', 5)
    assert.strictEqual(await probe.get('project:x:exists'), '{}')
    await lupa.close()
    // The probe holds no connection of its own: it is closed with the handle.
    await assert.rejects(probe.get('project:x:exists'), coded('STORAGE_UNAVAILABLE'))
    assert.strictEqual(lupa.cacheProbe(), null)
  } finally {
    await lupa.close()
  }
})

test('errors are Error instances with code, httpStatus and the message of the table', async () => {
  const lupa = await Lupa.open({ store: 'sqlite::memory:', cache: 'none' })
  try {
    assert.strictEqual(lupa.cacheProbe(), null)
    await lupa.createProject({ id: 'p000000001', orgId: 'o', name: 'n' })
    await assert.rejects(lupa.createProject({ id: 'p000000001', orgId: 'o', name: 'n' }), (e) => {
      assert.ok(e instanceof Error)
      assert.strictEqual(e.code, 'PROJECT_EXISTS')
      assert.strictEqual(e.httpStatus, 409)
      assert.strictEqual(e.message, 'Project already exists')
      assert.match(e.stack, /Project already exists/)
      return true
    })
    await assert.rejects(lupa.getProject('p000000002'), coded('PROJECT_NOT_FOUND'))
    await assert.rejects(lupa.getDeployment('d000000002'), coded('DEPLOYMENT_NOT_FOUND'))
    await assert.rejects(lupa.rollback('p000000001'), coded('NO_ROLLBACK_TARGET'))
    await lupa.createDeployment({ project: 'p000000001', id: 'd000000001', snapshot: 's' })
    await assert.rejects(lupa.promote('p000000001', 'd000000001'), (e) => {
      return e.code === 'DEPLOYMENT_NOT_READY' && e.message === 'Deployment must be ready to promote to production'
    })
    await assert.rejects(lupa.setStatus('d000000001', 'processing'), coded('INVALID_ARGUMENT'))
    await assert.rejects(lupa.setEnvironment('p000000001', 'd000000001', 'prod'), coded('INVALID_ARGUMENT'))
    await assert.rejects(lupa.resolve({ project: 'p000000001' }), coded('INVALID_ARGUMENT'))
    await assert.rejects(
      lupa.resolve({ project: 'p000000001', apiKeyEnvironment: 'live', apiKey: 'lupa_sk_live_x' }),
      coded('INVALID_ARGUMENT'),
    )
    await assert.rejects(lupa.resolve({ project: 'p000000001', apiKey: 'nope' }), (e) => {
      return e.code === 'INVALID_API_KEY' && e.httpStatus === 403 && !e.message.includes('nope')
    })
    await lupa.setStatus('d000000001', 'failed')
    await assert.rejects(lupa.setStatus('d000000001', 'ready'), (e) => {
      return e.code === 'INVALID_STATUS_TRANSITION' && e.httpStatus === 409
    })
    assert.throws(() => parseApiKey('lupa_sk_live_'), coded('INVALID_API_KEY'))
    assert.deepStrictEqual(parseApiKey('lupa_pk_live_x'), { keyType: 'pk', environment: 'live' })
  } finally {
    await lupa.close()
  }
  await assert.rejects(lupa.getProject('p000000001'), coded('STORAGE_UNAVAILABLE'))
  await lupa.close()
  assert.strictEqual(lupa.closed, true)
})

test('bad options of open: TypeError or INVALID_ARGUMENT', async () => {
  await assert.rejects(Lupa.open(), typeError)
  await assert.rejects(Lupa.open(null), typeError)
  await assert.rejects(Lupa.open('memory://'), typeError)
  await assert.rejects(Lupa.open({}), typeError)
  await assert.rejects(Lupa.open({ store: 1 }), typeError)
  await assert.rejects(Lupa.open({ store: 'memory://', stor: 'x' }), typeError)
  await assert.rejects(Lupa.open({ store: 'memory://', poolSize: -1 }), typeError)
  await assert.rejects(Lupa.open({ store: 'memory://', cacheTimeoutMs: Infinity }), typeError)
  await assert.rejects(Lupa.open({ store: 'memory://', cache: () => 1 }), typeError)
  await assert.rejects(Lupa.open({ store: 'memory://', cache: Symbol('x') }), typeError)
  await assert.rejects(Lupa.open({ store: 'memory://', poolSize: 10n }), typeError)
  await assert.rejects(Lupa.open({ store: 'mysql://x' }), coded('INVALID_ARGUMENT'))
  await assert.rejects(Lupa.open({ store: 'memory://', cache: 'memcached://x' }), coded('INVALID_ARGUMENT'))
  await assert.rejects(Lupa.open({ store: 'memory://', schema: 'Bad-Schema' }), coded('INVALID_ARGUMENT'))
  await assert.rejects(Lupa.open({ store: 'memory://', poolSize: 0 }), coded('INVALID_ARGUMENT'))
  await assert.rejects(Lupa.open({ store: 'memory://', storeTimeoutMs: 0 }), coded('INVALID_ARGUMENT'))
  await assert.rejects(Lupa.open({ store: 'postgres://u:secret@127.0.0.1:1/db', storeTimeoutMs: 2000 }), (e) => {
    return codes.has(e.code) && !e.message.includes('secret')
  })
  const cyclic = { store: 'memory://' }
  cyclic.self = cyclic
  await assert.rejects(Lupa.open(cyclic), typeError)
  assert.throws(() => new Lupa(), Error)
})

test('wrong types, undefined and huge strings never crash', async () => {
  const lupa = await Lupa.open({ store: 'sqlite::memory:', cache: 'memory://' })
  try {
    const huge = 'x'.repeat(16 * 1024 * 1024)
    const hugeUnicode = '\u{1F600}'.repeat(1024 * 1024)
    const junk = [undefined, null, 0, -1, NaN, true, {}, [], () => {}, Symbol('s'), 10n, new Date(NaN), huge, hugeUnicode, '', '\0']
    const calls = [
      (v) => lupa.getProject(v),
      (v) => lupa.getDeployment(v),
      (v) => lupa.createProject(v),
      (v) => lupa.createProject({ id: v, orgId: 'o', name: 'n' }),
      (v) => lupa.createProject({ orgId: v, name: 'n' }),
      (v) => lupa.createProject({ orgId: 'o', name: v }),
      (v) => lupa.createDeployment({ project: 'p', id: 'd', snapshot: 's', createdAt: v }),
      (v) => lupa.createDeployment({ project: v, snapshot: 's' }),
      (v) => lupa.createDeployment({ project: 'p', snapshot: 's', environment: v }),
      (v) => lupa.listProjects(v),
      (v) => lupa.listProjects({ limit: v }),
      (v) => lupa.listDeployments(v),
      (v) => lupa.listDeployments('p', { cursor: v }),
      (v) => lupa.setStatus(v, 'ready'),
      (v) => lupa.setStatus('d', v),
      (v) => lupa.setStatus('d', 'failed', v),
      (v) => lupa.promote(v, v),
      (v) => lupa.setEnvironment('p', 'd', v),
      (v) => lupa.deleteDeployment(v, 'd'),
      (v) => lupa.deleteProject(v),
      (v) => lupa.rollback(v),
      (v) => lupa.history(v),
      (v) => lupa.history('p', { limit: v }),
      (v) => lupa.resolve(v),
      (v) => lupa.resolve({ project: v, apiKeyEnvironment: 'live' }),
      (v) => lupa.resolve({ project: 'p', apiKey: v }),
      (v) => lupa.resolve({ project: 'p', apiKeyEnvironment: v }),
      (v) => lupa.resolve({ project: 'p', deploymentId: v, apiKeyEnvironment: 'test' }),
      (v) => lupa.resolve({ project: 'p', internal: v }),
      (v) => lupa.resolveRequest({ projectId: 'p', headers: { authorization: v, 'deployment-id': v } }),
      (v) => lupa.resolveRequest({ projectId: v, headers: { authorization: `Bearer ${typeof v === 'string' ? v : 'x'}` } }),
      (v) => lupa.resolveRequest({ rootDomain: v, headers: { host: v } }),
      (v) => lupa.cacheProbe().get(v),
      (v) => lupa.cacheProbe().set('k', 'v', v),
    ]
    let outcomes = 0
    for (const call of calls) {
      for (const v of junk) {
        let p
        try {
          p = call(v)
        } catch (e) {
          assert.fail(`a Promise-returning method threw synchronously: ${e}`)
        }
        assert.ok(p instanceof Promise)
        try {
          await p
        } catch (e) {
          assert.ok(
            typeError(e) || (e instanceof Error && codes.has(e.code) && typeof e.httpStatus === 'number'),
            `${call} with ${typeof v}: ${e?.stack ?? e}`,
          )
          assert.ok(e.message.length < 1000, 'a message never echoes a huge input')
        }
        outcomes += 1
      }
    }
    assert.strictEqual(outcomes, calls.length * junk.length)
    for (const v of [undefined, null, 5, {}, huge]) {
      assert.throws(() => parseApiKey(v), (e) => typeError(e) || e.code === 'INVALID_API_KEY')
    }
    // A method called on something that is not a handle.
    assert.throws(() => Lupa.prototype.getProject.call({}, 'p'), Error)
    // The process is still fine.
    assert.strictEqual((await lupa.health()).store.state, 'ok')
  } finally {
    await lupa.close()
  }
})

test('several handles in one process are independent', async () => {
  const handles = await Promise.all(
    Array.from({ length: 5 }, () => Lupa.open({ store: 'sqlite::memory:', cache: 'memory://' })),
  )
  try {
    await Promise.all(handles.map((l, i) => l.createProject({ id: `proj00000${i}`, orgId: 'o', name: `n${i}` })))
    for (const [i, l] of handles.entries()) {
      const items = (await l.listProjects()).items.map((p) => p.id)
      assert.deepStrictEqual(items, [`proj00000${i}`])
    }
    await handles[0].close()
    await assert.rejects(handles[0].getProject('proj000000'), coded('STORAGE_UNAVAILABLE'))
    assert.strictEqual((await handles[1].getProject('proj000001')).name, 'n1')
  } finally {
    await Promise.all(handles.map((l) => l.close()))
  }
})
