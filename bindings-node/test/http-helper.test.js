'use strict'
// The middleware helper: every error with its status and body, live and
// test keys, the Deployment-Id override, subdomain routing.

const test = require('node:test')
const assert = require('node:assert')
const { Lupa, errorCodes, projectFromHost } = require('..')

const LIVE = 'lupa_sk_live_abcdefghijklmnopqrstuvwxyz'
const TEST = 'lupa_pk_test_abcdefghijklmnopqrstuvwxyz'
const LEGACY = `lupa_sk_${'A'.repeat(32)}`

async function fixture() {
  const lupa = await Lupa.open({ store: 'sqlite::memory:', cache: 'memory://' })
  await lupa.createProject({ id: 'abc1234567', orgId: 'org_1', name: 'Docs' })
  await lupa.createProject({ id: 'other00001', orgId: 'org_1', name: 'Other' })
  await lupa.createProject({ id: 'empty00001', orgId: 'org_1', name: 'Empty' })
  for (const [id, project] of [
    ['prod000001', 'abc1234567'],
    ['stag000001', 'abc1234567'],
    ['proc000001', 'abc1234567'],
    ['else000001', 'other00001'],
  ]) {
    await lupa.createDeployment({ project, id, snapshot: 'snp0000001' })
  }
  await lupa.setStatus('prod000001', 'ready')
  await lupa.setStatus('stag000001', 'ready')
  await lupa.setStatus('else000001', 'ready')
  await lupa.promote('abc1234567', 'prod000001')
  return lupa
}

const body = (code, message) => JSON.stringify({ error: { code, message } })

function rejected(r, status, code, message) {
  assert.strictEqual(r.ok, false, JSON.stringify(r))
  assert.strictEqual(r.status, status)
  assert.strictEqual(r.code, code)
  assert.deepStrictEqual(JSON.parse(r.body), JSON.parse(body(code, message)))
  assert.strictEqual(r.body, body(code, message))
}

test('live and test keys, Deployment-Id override, routes without a deployment', async () => {
  const lupa = await fixture()
  try {
    const ask = (headers, extra = {}) => lupa.resolveRequest({ projectId: 'abc1234567', headers, ...extra })
    assert.deepStrictEqual(await ask({ authorization: `Bearer ${LIVE}` }), {
      ok: true,
      projectId: 'abc1234567',
      deploymentId: 'prod000001',
    })
    assert.strictEqual((await ask({ authorization: `Bearer ${LEGACY}` })).deploymentId, 'prod000001')
    assert.strictEqual((await ask({ Authorization: `bearer ${TEST}` })).deploymentId, 'stag000001')
    // Deployment-Id wins over the key's environment, in any header case.
    assert.strictEqual(
      (await ask({ authorization: `Bearer ${LIVE}`, 'Deployment-Id': 'stag000001' })).deploymentId,
      'stag000001',
    )
    // A fetch Headers object, as Next.js middleware has it.
    const h = new Headers({ Authorization: `Bearer ${TEST}`, 'deployment-id': 'prod000001' })
    assert.strictEqual((await ask(h)).deploymentId, 'prod000001')
    // An empty Deployment-Id is none.
    assert.strictEqual((await ask({ authorization: `Bearer ${TEST}`, 'deployment-id': '' })).deploymentId, 'stag000001')
    // A route without a deployment: valid, none.
    assert.deepStrictEqual(await ask({ authorization: `Bearer ${LIVE}` }, { requiresDeployment: false }), {
      ok: true,
      projectId: 'abc1234567',
      deploymentId: null,
    })
    // ...but a named one must still exist and belong to the project, ready or not.
    assert.strictEqual(
      (await ask({ authorization: `Bearer ${LIVE}`, 'deployment-id': 'proc000001' }, { requiresDeployment: false }))
        .deploymentId,
      'proc000001',
    )
  } finally {
    await lupa.close()
  }
})

test('every error answers with its status and body', async () => {
  const lupa = await fixture()
  try {
    const ask = (projectId, headers, extra = {}) => lupa.resolveRequest({ projectId, headers, ...extra })
    const live = { authorization: `Bearer ${LIVE}` }
    rejected(await ask('abc1234567', {}), 403, 'INVALID_API_KEY', 'API Key is not valid')
    rejected(await ask('abc1234567', { authorization: LIVE }), 403, 'INVALID_API_KEY', 'API Key is not valid')
    rejected(await ask('abc1234567', { authorization: 'Bearer nonsense' }), 403, 'INVALID_API_KEY', 'API Key is not valid')
    rejected(await ask('abc1234567', { authorization: `Basic ${LIVE}` }), 403, 'INVALID_API_KEY', 'API Key is not valid')
    // A malformed key wins over a malformed project id.
    rejected(await ask('not an id', { authorization: 'Bearer x' }), 403, 'INVALID_API_KEY', 'API Key is not valid')
    rejected(await ask('nope000001', live), 404, 'PROJECT_NOT_FOUND', 'Project not found')
    const notFound = 'Deployment not found or does not belong to this project'
    rejected(await ask('abc1234567', { ...live, 'deployment-id': 'miss000001' }), 404, 'DEPLOYMENT_NOT_FOUND', notFound)
    rejected(await ask('abc1234567', { ...live, 'deployment-id': 'else000001' }), 404, 'DEPLOYMENT_NOT_FOUND', notFound)
    rejected(
      await ask('empty00001', live),
      400,
      'NO_PRODUCTION_DEPLOYMENT',
      'No production deployment found. Please specify Deployment-Id header.',
    )
    rejected(
      await ask('empty00001', { authorization: `Bearer ${TEST}` }),
      400,
      'NO_STAGING_DEPLOYMENT',
      'No staging deployment found. Please specify Deployment-Id header.',
    )
    rejected(
      await ask('abc1234567', { ...live, 'deployment-id': 'proc000001' }),
      400,
      'DEPLOYMENT_NOT_READY',
      'Deployment is not ready to be queried',
    )
    const bad = await ask('not an id', live)
    assert.strictEqual(bad.status, 400)
    assert.strictEqual(bad.code, 'INVALID_ARGUMENT')
    assert.deepStrictEqual(JSON.parse(bad.body), { error: { code: 'INVALID_ARGUMENT', message: bad.message } })
    const badHeader = await ask('abc1234567', { ...live, 'deployment-id': 'a/b' })
    assert.strictEqual(badHeader.code, 'INVALID_ARGUMENT')
    await lupa.close()
    rejected(await ask('abc1234567', live), 503, 'STORAGE_UNAVAILABLE', 'Storage is unavailable')
  } finally {
    await lupa.close()
  }
})

test('subdomain routing from the Host header, localhost included', async () => {
  const lupa = await fixture()
  try {
    const ask = (host, rootDomain, extra = {}) =>
      lupa.resolveRequest({ rootDomain, headers: { host, authorization: `Bearer ${LIVE}`, ...extra } })
    assert.deepStrictEqual(await ask('abc1234567.lupa.build', 'lupa.build'), {
      ok: true,
      projectId: 'abc1234567',
      deploymentId: 'prod000001',
    })
    assert.strictEqual((await ask('abc1234567.localhost:3000', 'localhost')).deploymentId, 'prod000001')
    assert.strictEqual((await ask('ABC1234567.LUPA.build:443', 'lupa.build')).ok, false, 'ids are case-sensitive')
    assert.strictEqual((await ask('abc1234567.LUPA.build:443', 'lupa.build')).deploymentId, 'prod000001')
    for (const host of ['lupa.build', 'a.b.lupa.build', 'abc1234567.other.build', 'localhost:3000', '']) {
      const r = await ask(host, host.includes('localhost') ? 'localhost' : 'lupa.build')
      assert.strictEqual(r.status, 400, host)
      assert.strictEqual(r.code, 'INVALID_ARGUMENT', host)
    }
    const noHost = await lupa.resolveRequest({ rootDomain: 'lupa.build', headers: { authorization: `Bearer ${LIVE}` } })
    assert.strictEqual(noHost.code, 'INVALID_ARGUMENT')
    // A malformed key wins over a host without a project subdomain.
    const both = await lupa.resolveRequest({ rootDomain: 'lupa.build', headers: { host: 'lupa.build' } })
    assert.strictEqual(both.code, 'INVALID_API_KEY')
    assert.strictEqual(projectFromHost('abc1234567.localhost:3000', 'localhost'), 'abc1234567')
    assert.throws(() => projectFromHost('localhost', 'localhost'), (e) => e.code === 'INVALID_ARGUMENT' && e.httpStatus === 400)
  } finally {
    await lupa.close()
  }
})

test('the helper rejects only arguments of the wrong type', async () => {
  const lupa = await fixture()
  try {
    const typeError = (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE'
    await assert.rejects(lupa.resolveRequest(), typeError)
    await assert.rejects(lupa.resolveRequest('abc1234567'), typeError)
    await assert.rejects(lupa.resolveRequest({ projectId: 'abc1234567' }), typeError)
    await assert.rejects(lupa.resolveRequest({ projectId: 'abc1234567', rootDomain: 'x', headers: {} }), typeError)
    await assert.rejects(lupa.resolveRequest({ headers: {} }), typeError)
    await assert.rejects(lupa.resolveRequest({ projectId: 1, headers: {} }), typeError)
    await assert.rejects(lupa.resolveRequest({ projectId: 'abc1234567', headers: 'x' }), typeError)
    await assert.rejects(lupa.resolveRequest({ projectId: 'abc1234567', headers: { authorization: 5 } }), typeError)
    await assert.rejects(lupa.resolveRequest({ projectId: 'abc1234567', headers: {}, colour: 'red' }), typeError)
    await assert.rejects(
      lupa.resolveRequest({ projectId: 'abc1234567', headers: {}, requiresDeployment: 'yes' }),
      typeError,
    )
    // Node's repeated headers arrive as lists.
    const r = await lupa.resolveRequest({ projectId: 'abc1234567', headers: { authorization: [`Bearer ${LIVE}`] } })
    assert.strictEqual(r.deploymentId, 'prod000001')
  } finally {
    await lupa.close()
  }
})

test('the statuses match the error table', () => {
  const table = Object.fromEntries(errorCodes().map((c) => [c.code, c.httpStatus]))
  assert.deepStrictEqual(table, {
    INVALID_API_KEY: 403,
    PROJECT_NOT_FOUND: 404,
    DEPLOYMENT_NOT_FOUND: 404,
    NO_PRODUCTION_DEPLOYMENT: 400,
    NO_STAGING_DEPLOYMENT: 400,
    DEPLOYMENT_NOT_IN_PROJECT: 400,
    DEPLOYMENT_NOT_READY: 400,
    INVALID_ARGUMENT: 400,
    PROJECT_EXISTS: 409,
    DEPLOYMENT_EXISTS: 409,
    INVALID_STATUS_TRANSITION: 409,
    PRODUCTION_CONFLICT: 409,
    NO_ROLLBACK_TARGET: 409,
    STORAGE_UNAVAILABLE: 503,
    INTERNAL: 500,
  })
})
