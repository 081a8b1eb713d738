'use strict'
// stats() and metricsText(): the counters move exactly as a scripted
// sequence of calls predicts, and the Prometheus text, parsed line by line
// here, is well formed and says what stats() says.

const test = require('node:test')
const assert = require('node:assert')
const { Lupa } = require('lupa-core')
const { postgres, redis, unique } = require('./support')

const coded = (code) => (e) => e instanceof Error && e.code === code && typeof e.httpStatus === 'number'
const live = (project) => ({ project, apiKeyEnvironment: 'live' })

async function readyProduction(lupa, project, deployment) {
  await lupa.createProject({ id: project, orgId: 'org_1', name: 'Stats' })
  // Created for production: promoted the moment it is ready (one promotion).
  await lupa.createDeployment({ project, id: deployment, snapshot: 'snp1', environment: 'production' })
  await lupa.setStatus(deployment, 'ready')
}

/**
 * The text exposition format (version 0.0.4), strictly: `# HELP` and
 * `# TYPE` lines, then samples `name{label="value",...} number`, each after
 * the TYPE of its family (a histogram's `_bucket`, `_sum` and `_count`
 * belong to it), no family declared twice, no series twice. Returns the
 * families' types and every sample by name and labels.
 */
function parsePrometheus(text) {
  assert.ok(text.endsWith('\n'), 'the text ends with a newline')
  const types = new Map()
  const helps = new Set()
  const samples = new Map()
  const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
  const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(?:,|$)/
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const [name, ...help] = line.slice(7).split(' ')
      assert.match(name, metricName, line)
      assert.ok(help.join(' ').length > 0, `HELP without text: ${line}`)
      assert.ok(!helps.has(name), `HELP twice: ${line}`)
      helps.add(name)
      continue
    }
    if (line.startsWith('# TYPE ')) {
      const parts = line.slice(7).split(' ')
      assert.strictEqual(parts.length, 2, line)
      const [name, kind] = parts
      assert.match(name, metricName, line)
      assert.ok(['counter', 'gauge', 'histogram'].includes(kind), line)
      assert.ok(!types.has(name), `family declared twice: ${line}`)
      assert.ok(helps.has(name), `TYPE without HELP: ${line}`)
      types.set(name, kind)
      continue
    }
    assert.ok(!line.startsWith('#') && line.length > 0, `unexpected line ${JSON.stringify(line)}`)
    const m = sample.exec(line)
    assert.ok(m, `not \`name{labels} value\`: ${line}`)
    const [, name, rawLabels = '', rawValue] = m
    const labels = {}
    for (let rest = rawLabels; rest.length > 0; ) {
      const l = label.exec(rest)
      assert.ok(l, `bad labels in ${line}`)
      assert.ok(!(l[1] in labels), `label twice in ${line}`)
      labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c))
      rest = rest.slice(l[0].length)
    }
    const value = rawValue === '+Inf' ? Infinity : Number(rawValue)
    assert.ok(!Number.isNaN(value) && /^[+-]?(\d+(\.\d*)?(e[+-]?\d+)?|Inf)$/i.test(rawValue), `bad value: ${line}`)
    const family = ['_bucket', '_sum', '_count']
      .map((suffix) => name.endsWith(suffix) && name.slice(0, -suffix.length))
      .find((f) => f && types.get(f) === 'histogram')
    assert.ok(types.has(family || name), `sample before its TYPE: ${line}`)
    assert.ok(name.startsWith('lupa_'), line)
    const key = seriesKey(name, labels)
    assert.ok(!samples.has(key), `series twice: ${key}`)
    samples.set(key, value)
  }
  return { types, samples }
}

function seriesKey(name, labels = {}) {
  const pairs = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
  return `${name}{${pairs.join(',')}}`
}

/** Every sample of the text agrees with the snapshot `s`, taken just before. */
function checkText(s, text) {
  const { types, samples } = parsePrometheus(text)
  const value = (name, labels) => {
    const key = seriesKey(name, labels)
    assert.ok(samples.has(key), `no ${key} in\n${text}`)
    return samples.get(key)
  }
  assert.strictEqual(types.get('lupa_resolutions_total'), 'counter')
  assert.strictEqual(types.get('lupa_resolve_duration_seconds'), 'histogram')
  const r = s.resolutions
  for (const source of ['local', 'cache', 'store']) {
    assert.strictEqual(value('lupa_resolutions_total', { source }), r[source])
  }
  for (const e of r.errors) assert.strictEqual(value('lupa_resolution_errors_total', { code: e.code }), e.count)
  const errorSeries = [...samples.keys()].filter((k) => k.startsWith('lupa_resolution_errors_total{'))
  assert.strictEqual(errorSeries.length, r.errors.length)
  assert.strictEqual(value('lupa_cache_hits_total', { tier: 'local' }), s.local.hits)
  assert.strictEqual(value('lupa_cache_misses_total', { tier: 'local' }), s.local.misses)
  assert.strictEqual(value('lupa_cache_hits_total', { tier: 'shared' }), s.cache.hits)
  assert.strictEqual(value('lupa_cache_misses_total', { tier: 'shared' }), s.cache.misses)
  assert.strictEqual(value('lupa_cache_failures_total', { kind: 'error' }), s.cache.errors)
  assert.strictEqual(value('lupa_cache_failures_total', { kind: 'timeout' }), s.cache.timeouts)
  assert.strictEqual(value('lupa_cache_failures_total', { kind: 'skipped' }), s.cache.skipped)
  assert.strictEqual(value('lupa_cache_breaker_opened_total'), s.cache.breakerOpened)
  if (s.cache.breaker === null) {
    assert.ok(!types.has('lupa_cache_breaker_state'))
  } else {
    for (const state of ['closed', 'open', 'half_open']) {
      assert.strictEqual(value('lupa_cache_breaker_state', { state }), state === s.cache.breaker ? 1 : 0)
    }
  }
  if (s.localProjects === null) assert.ok(!types.has('lupa_local_projects'))
  else assert.strictEqual(value('lupa_local_projects'), s.localProjects)
  // The background task that applies pending cache updates may have asked
  // the store since the snapshot.
  assert.ok(value('lupa_store_queries_total') >= s.store.queries)
  assert.strictEqual(value('lupa_store_unavailable_total'), s.store.unavailable)

  const h = s.latency
  const count = h.counts.reduce((a, b) => a + b, 0)
  const buckets = [...samples.entries()]
    .filter(([k]) => k.startsWith('lupa_resolve_duration_seconds_bucket{'))
    .map(([k, v]) => [Number(JSON.parse(k.slice(k.indexOf('le=') + 3, -1)).replace('+Inf', 'Infinity')), v])
  const expected = []
  let cumulative = 0
  h.boundsUs.forEach((bound, i) => {
    cumulative += h.counts[i]
    expected.push([bound / 1e6, cumulative])
  })
  expected.push([Infinity, count])
  assert.deepStrictEqual(buckets, expected)
  assert.strictEqual(value('lupa_resolve_duration_seconds_count'), count)
  assert.ok(Math.abs(value('lupa_resolve_duration_seconds_sum') - h.sumNs / 1e9) < 1e-9)

  for (const d of s.deployments) {
    const labels = { project: d.project, deployment: d.deployment }
    assert.strictEqual(value('lupa_deployment_resolutions_total', labels), d.resolutions)
  }
  const deploymentSeries = [...samples.keys()].filter((k) => k.startsWith('lupa_deployment_resolutions_total{'))
  assert.strictEqual(deploymentSeries.length, s.deployments.length)
  assert.strictEqual(value('lupa_untracked_deployment_resolutions_total'), s.untrackedDeploymentResolutions)
  assert.strictEqual(value('lupa_promotions_total'), s.promotions)
  assert.strictEqual(value('lupa_rollbacks_total'), s.rollbacks)
}

async function scripted(t, options, hasCache) {
  const lupa = await Lupa.open(options)
  try {
    await readyProduction(lupa, 'proj_m', 'dep_m')
    const before = lupa.stats()
    assert.strictEqual(before.promotions, 1)
    assert.strictEqual(before.rollbacks, 0)
    assert.deepStrictEqual(before.resolutions, { local: 0, cache: 0, store: 0, errors: [] })

    // First resolve: misses process memory and the shared cache; the store answers.
    assert.strictEqual((await lupa.resolve(live('proj_m'))).source, 'store')
    const s = lupa.stats()
    assert.deepStrictEqual(s.local, { hits: 0, misses: 1 })
    assert.deepStrictEqual([s.cache.hits, s.cache.misses], hasCache ? [0, 1] : [0, 0])
    assert.deepStrictEqual([s.resolutions.local, s.resolutions.cache, s.resolutions.store], [0, 0, 1])
    if (hasCache) {
      // The background task that applies pending cache updates also asks
      // the store, on its own schedule.
      assert.ok(s.store.queries >= before.store.queries + 1)
    } else {
      assert.strictEqual(s.store.queries, before.store.queries + 1, 'one statement answers a cold resolve')
    }

    // Second: process memory, settled on the JavaScript thread.
    assert.strictEqual((await lupa.resolve(live('proj_m'))).source, 'local')
    const s2 = lupa.stats()
    assert.deepStrictEqual(s2.local, { hits: 1, misses: 1 })
    assert.deepStrictEqual([s2.resolutions.local, s2.resolutions.store], [1, 1])
    if (!hasCache) assert.strictEqual(s2.store.queries, s.store.queries, 'nothing more reached the store')
    assert.deepStrictEqual(s2.deployments, [{ project: 'proj_m', deployment: 'dep_m', resolutions: 2 }])
    assert.strictEqual(s2.localProjects, 1)

    // Errors by code: a malformed key fails before any lookup; an unknown
    // project misses every tier once, then its negative answer is held in
    // process memory; staging has no deployment.
    await assert.rejects(lupa.resolve({ project: 'proj_m', apiKey: 'lupa_sk_nope' }), coded('INVALID_API_KEY'))
    await assert.rejects(lupa.resolve(live('proj_none')), coded('PROJECT_NOT_FOUND'))
    await assert.rejects(lupa.resolve(live('proj_none')), coded('PROJECT_NOT_FOUND'))
    await assert.rejects(
      lupa.resolve({ project: 'proj_m', apiKeyEnvironment: 'test' }),
      coded('NO_STAGING_DEPLOYMENT'),
    )
    const s3 = lupa.stats()
    assert.deepStrictEqual(s3.resolutions.errors, [
      { code: 'INVALID_API_KEY', count: 1 },
      { code: 'PROJECT_NOT_FOUND', count: 2 },
      { code: 'NO_STAGING_DEPLOYMENT', count: 1 },
    ])
    // Timed: what went past process memory (the first resolve, the first
    // unknown project, the test key); not the answer from memory, the bad
    // key nor the negative answer held in memory.
    const h = s3.latency
    assert.strictEqual(h.counts.reduce((a, b) => a + b, 0), 3)
    assert.strictEqual(h.counts.length, h.boundsUs.length + 1)
    assert.ok(h.sumNs > 0)
    assert.deepStrictEqual(s3.local, { hits: 2, misses: 3 })
    assert.deepStrictEqual([s3.cache.hits, s3.cache.misses], hasCache ? [0, 3] : [0, 0])
    assert.strictEqual(s3.cache.breaker, hasCache ? 'closed' : null)
    assert.deepStrictEqual([s3.cache.errors, s3.cache.timeouts, s3.cache.skipped, s3.cache.breakerOpened], [0, 0, 0, 0])
    assert.strictEqual(s3.store.unavailable, 0)

    // A promotion and a rollback; a no-op promotion counts nothing.
    await lupa.createDeployment({ project: 'proj_m', id: 'dep_m2', snapshot: 'snp2' })
    await lupa.setStatus('dep_m2', 'ready')
    await lupa.promote('proj_m', 'dep_m2')
    await lupa.promote('proj_m', 'dep_m2')
    await lupa.rollback('proj_m')
    const s4 = lupa.stats()
    assert.deepStrictEqual([s4.promotions, s4.rollbacks], [2, 1])
    // The change dropped the answer held in memory: the store answers again.
    assert.deepStrictEqual(await lupa.resolve(live('proj_m')), { deployment: 'dep_m', source: 'store' })
    assert.strictEqual(lupa.stats().resolutions.store, 2)

    checkText(lupa.stats(), lupa.metricsText())
  } finally {
    if (hasCache) await lupa.cacheProbe().clear()
    await lupa.dropStorage()
    await lupa.close()
  }
}

test('counts move as the sequence predicts: memory+memory', (t) =>
  scripted(t, { store: 'memory://', cache: 'memory://' }, true))

test('counts move as the sequence predicts: memory+none', (t) =>
  scripted(t, { store: 'memory://', cache: 'none' }, false))

test('counts move as the sequence predicts: postgres+redis', async (t) => {
  const [db, cache] = [await postgres(), await redis()]
  if (!db || !cache) return t.skip('PostgreSQL or Redis is not reachable')
  const tag = unique('lupa_nodem')
  await scripted(t, { store: db, cache, schema: tag, keyPrefix: `${tag}:`, cacheTimeoutMs: 2000 }, true)
})

test('the shared cache answers without the in-process tier', async () => {
  const lupa = await Lupa.open({ store: 'memory://', cache: 'memory://', localCache: false })
  try {
    await readyProduction(lupa, 'proj_m', 'dep_m')
    const sources = []
    for (let i = 0; i < 3; i++) sources.push((await lupa.resolve(live('proj_m'))).source)
    assert.deepStrictEqual(sources, ['store', 'cache', 'cache'])
    const s = lupa.stats()
    assert.deepStrictEqual([s.cache.hits, s.cache.misses], [2, 1])
    assert.deepStrictEqual([s.resolutions.cache, s.resolutions.store, s.resolutions.local], [2, 1, 0])
    assert.deepStrictEqual([s.local.hits, s.local.misses, s.localProjects], [0, 0, null])
    checkText(s, lupa.metricsText())
  } finally {
    await lupa.close()
  }
})

test('stats() is synchronous and a plain object; metrics: false counts nothing', async () => {
  const lupa = await Lupa.open({ store: 'memory://', cache: 'memory://', metrics: false })
  try {
    await readyProduction(lupa, 'proj_m', 'dep_m')
    await lupa.resolve(live('proj_m'))
    await lupa.resolve(live('proj_m'))
    const s = lupa.stats()
    assert.ok(!(s instanceof Promise) && Object.getPrototypeOf(s) === Object.prototype)
    assert.deepStrictEqual(JSON.parse(JSON.stringify(s)), s, 'plain data, straight into JSON')
    assert.deepStrictEqual(s.resolutions, { local: 0, cache: 0, store: 0, errors: [] })
    assert.deepStrictEqual([s.promotions, s.store.queries, s.local.hits, s.cache.misses], [0, 0, 0, 0])
    assert.strictEqual(s.localProjects, 1, 'gauges still read the live state')
    const text = lupa.metricsText()
    assert.strictEqual(typeof text, 'string')
    checkText(s, text)
  } finally {
    await lupa.close()
  }
  await assert.rejects(Lupa.open({ store: 'memory://', metrics: 'no' }), TypeError)
})

test('a closed handle answers no stats', async () => {
  const lupa = await Lupa.open({ store: 'memory://', cache: 'memory://' })
  await lupa.close()
  assert.throws(() => lupa.stats(), coded('STORAGE_UNAVAILABLE'))
  assert.throws(() => lupa.metricsText(), coded('STORAGE_UNAVAILABLE'))
})
