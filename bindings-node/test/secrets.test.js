'use strict'
// Passwords in store and cache URLs, and API keys, never show: not in an
// error's message, stack or util.inspect, not in the inspected handle, not
// in an HTTP rejection's body. Nothing listens on 127.0.0.1:1, so every
// connection there fails: the failures are the point.

const test = require('node:test')
const assert = require('node:assert')
const util = require('node:util')
const { Lupa, parseApiKey } = require('lupa-core')

const PASSWORD = 'S3cretPw'
const STORE_URL = 'postgres://user:S3cretPw@127.0.0.1:1/db'
const CACHE_URL = 'redis://:S3cretPw@127.0.0.1:1'
const KEY_SECRET = 'K3ySecretPartK3ySecretPart42'
const VALID_KEY = `lupa_sk_live_${KEY_SECRET}`
const MALFORMED_KEY = `lupa_xx_live_${KEY_SECRET}`

function hidden(what, text) {
  assert.ok(!text.includes(PASSWORD), `${what} shows the password: ${text}`)
  assert.ok(!text.includes(KEY_SECRET), `${what} shows the API key: ${text}`)
}

function errorHidden(what, e) {
  assert.ok(e instanceof Error, `${what}: ${e}`)
  hidden(`${what} message`, e.message)
  hidden(`${what} String()`, String(e))
  hidden(`${what} stack`, String(e.stack))
  hidden(`${what} util.inspect`, util.inspect(e, { depth: 10, showHidden: true }))
  hidden(`${what} JSON`, JSON.stringify(e, Object.getOwnPropertyNames(e)))
  if (e.cause !== undefined) errorHidden(`${what} cause`, e.cause)
}

async function rejection(what, promise) {
  try {
    await promise
  } catch (e) {
    errorHidden(what, e)
    return e
  }
  assert.fail(`${what} did not fail`)
}

test('an unreachable store fails without its password', async () => {
  const e = await rejection('open on an unreachable PostgreSQL', Lupa.open({ store: STORE_URL, storeTimeoutMs: 500 }))
  assert.strictEqual(e.code, 'STORAGE_UNAVAILABLE')
  await rejection(
    'open on unreachable PostgreSQL and Redis',
    Lupa.open({ store: STORE_URL, cache: CACHE_URL, storeTimeoutMs: 500, cacheTimeoutMs: 200 }),
  )
})

test('an unreachable cache degrades, and the handle never shows its password', async () => {
  let lupa
  try {
    lupa = await Lupa.open({ store: 'memory://', cache: CACHE_URL, cacheTimeoutMs: 200, breakerThreshold: 2 })
  } catch (e) {
    errorHidden('open on an unreachable Redis', e)
    return
  }
  try {
    hidden('util.inspect of the handle', util.inspect(lupa, { depth: 10, showHidden: true }))
    hidden('String() of the handle', String(lupa))
    await lupa.createProject({ id: 'p1', orgId: 'org_1', name: 'Docs' })
    for (let i = 0; i < 4; i++) {
      const e = await rejection('resolve behind an unreachable Redis', lupa.resolve({ project: 'p1', apiKey: VALID_KEY }))
      assert.strictEqual(e.code, 'NO_PRODUCTION_DEPLOYMENT')
    }
    hidden('health', util.inspect(await lupa.health(), { depth: 10 }))
    hidden('util.inspect of the handle after failures', util.inspect(lupa, { depth: 10, showHidden: true }))
  } finally {
    await lupa.close()
  }
})

test('API keys never show in errors or rejections', async () => {
  try {
    parseApiKey(MALFORMED_KEY)
    assert.fail('a malformed key parsed')
  } catch (e) {
    assert.strictEqual(e.code, 'INVALID_API_KEY')
    errorHidden('parseApiKey', e)
  }
  hidden('parseApiKey result', util.inspect(parseApiKey(VALID_KEY)))
  const lupa = await Lupa.open({ store: 'memory://', cache: 'memory://' })
  try {
    await lupa.createProject({ id: 'p1', orgId: 'org_1', name: 'Docs' })
    for (const request of [
      { project: 'p1', apiKey: MALFORMED_KEY },
      { project: 'p1', apiKey: `${MALFORMED_KEY}\n`, deploymentId: 'bad id' },
      { project: 'bad id', apiKey: MALFORMED_KEY },
      { project: 'p1', apiKey: VALID_KEY },
      { project: 'p1', apiKeyEnvironment: KEY_SECRET },
    ]) {
      await rejection(`resolve ${util.inspect(Object.keys(request))}`, lupa.resolve(request))
    }
    for (const authorization of [`Bearer ${MALFORMED_KEY}`, `Bearer  ${VALID_KEY}`, `Basic ${VALID_KEY}`, VALID_KEY]) {
      const answer = await lupa.resolveRequest({ projectId: 'p1', headers: { authorization } })
      assert.strictEqual(answer.ok, false)
      assert.strictEqual(answer.status, 403)
      hidden('resolveRequest rejection', util.inspect(answer, { depth: 10 }))
    }
    hidden('util.inspect of the handle', util.inspect(lupa, { depth: 10, showHidden: true }))
  } finally {
    await lupa.close()
  }
})
