'use strict'
// 1,000 concurrent resolves while another handle in the same process
// promotes: every answer is valid, and none that started after the
// promotion returned is the old one (PostgreSQL + Redis shared by both).

const test = require('node:test')
const assert = require('node:assert')
const { performance } = require('node:perf_hooks')
const { Lupa } = require('lupa-core')
const { postgres, redis, unique } = require('./support')

test('1,000 concurrent resolves while another handle promotes', async (t) => {
  const [db, cache] = [await postgres(), await redis()]
  if (!db || !cache) return t.skip('PostgreSQL or Redis is not reachable')
  const tag = unique('lupa_node')
  const options = { store: db, cache, schema: tag, keyPrefix: `${tag}:` }
  const writer = await Lupa.open(options)
  const reader = await Lupa.open(options)
  try {
    await writer.createProject({ id: 'conc000001', orgId: 'o', name: 'Concurrency' })
    for (const id of ['old0000001', 'new0000001']) {
      await writer.createDeployment({ project: 'conc000001', id, snapshot: 's' })
      await writer.setStatus(id, 'ready')
    }
    await writer.promote('conc000001', 'old0000001')
    // Warm the shared cache with the old answer.
    assert.strictEqual((await reader.resolve({ project: 'conc000001', apiKeyEnvironment: 'live' })).deployment, 'old0000001')

    const total = 1000
    const answers = []
    let promotedAt = Infinity
    let promotion
    const resolves = []
    for (let i = 0; i < total; i += 1) {
      if (i === 300) {
        promotion = writer.promote('conc000001', 'new0000001').then((p) => {
          promotedAt = performance.now()
          return p
        })
      }
      const startedAt = performance.now()
      resolves.push(
        reader.resolve({ project: 'conc000001', apiKeyEnvironment: 'live' }).then(
          (r) => answers.push({ startedAt, deployment: r.deployment }),
          (e) => answers.push({ startedAt, error: e }),
        ),
      )
      // Spread the calls over time so that some start after the promotion returned.
      if (i % 25 === 24) await new Promise((r) => setTimeout(r, 2))
      if (i === 700) await promotion
    }
    await Promise.all(resolves)
    const p = await promotion
    assert.strictEqual(p.deployment.id, 'new0000001')
    assert.strictEqual(p.cachePending, false)
    assert.strictEqual(answers.length, total)
    const errors = answers.filter((a) => a.error)
    assert.deepStrictEqual(errors.map((a) => `${a.error.code}: ${a.error.message}`), [])
    for (const a of answers) assert.ok(['old0000001', 'new0000001'].includes(a.deployment), a.deployment)
    const after = answers.filter((a) => a.startedAt > promotedAt)
    const stale = after.filter((a) => a.deployment !== 'new0000001')
    const counts = {
      old: answers.filter((a) => a.deployment === 'old0000001').length,
      new: answers.filter((a) => a.deployment === 'new0000001').length,
      startedAfterPromotion: after.length,
      staleAfterPromotion: stale.length,
    }
    console.log(`concurrency: ${JSON.stringify(counts)}`)
    t.diagnostic(JSON.stringify(counts))
    assert.ok(after.length >= 200, `only ${after.length} resolves started after the promotion returned`)
    assert.strictEqual(stale.length, 0)
  } finally {
    await reader.close()
    await writer.dropStorage().catch(() => {})
    const probe = writer.cacheProbe()
    if (probe) await probe.clear().catch(() => {})
    await writer.close()
  }
})
