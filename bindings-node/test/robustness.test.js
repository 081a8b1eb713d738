'use strict'
// What api.test.js's bad-input test does not reach: closing a handle while
// calls of every public method are in flight (memory, SQLite files,
// PostgreSQL+Redis), and strings that are not UTF-8 (lone surrogates) or
// not strings at all (Buffers, typed arrays) for every string argument.
// Each part runs in a child process (test/fixtures/close-race.js) so that a
// crash of the addon is an exit code here, and a hang a timeout.

const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { Lupa, CacheProbe } = require('..')
const { postgres, redis, unique } = require('./support')
const { CALLS, PROBE_CALLS } = require('./fixtures/close-race')

const script = path.join(__dirname, 'fixtures', 'close-race.js')

function child(mode, options, timeoutMs = 240000) {
  const out = spawnSync(process.execPath, [script, mode, JSON.stringify(options ?? {})], {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  })
  assert.strictEqual(out.error, undefined, `${mode}: ${out.error} (a hang?)\n${out.stderr}`)
  assert.strictEqual(out.signal, null, `${mode}: killed by ${out.signal}\n${out.stderr}`)
  assert.strictEqual(out.status, 0, `${mode}: exit ${out.status}\n${out.stderr.slice(-4000)}`)
  const line = out.stdout.trim().split('\n').pop()
  return JSON.parse(line)
}

test('every public method of Lupa and CacheProbe is in the close race', () => {
  const names = (cls) => Object.getOwnPropertyNames(cls.prototype).filter((n) => !['constructor', 'close', 'closed'].includes(n)).sort()
  assert.deepStrictEqual(names(Lupa), Object.keys(CALLS).sort())
  assert.deepStrictEqual(names(CacheProbe), Object.keys(PROBE_CALLS).sort())
})

test('close while calls of every method are in flight: memory', () => {
  const r = child('race', { store: 'memory://', cache: 'memory://' })
  for (const name of [...Object.keys(CALLS), ...Object.keys(PROBE_CALLS).map((n) => `probe.${n}`)]) {
    assert.ok(r.summary[name] >= 32, `${name}: ${r.summary[name]} calls`)
  }
})

test('close while calls of every method are in flight: SQLite files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lupa-close-'))
  try {
    const r = child('race', { store: `sqlite://${dir}/{name}.db`, cache: 'memory://' })
    assert.ok(Object.keys(r.summary).length >= Object.keys(CALLS).length)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('close while every method runs at once: PostgreSQL + Redis', async (t) => {
  const [db, cache] = await Promise.all([postgres(), redis()])
  if (!db || !cache) return t.skip('PostgreSQL or Redis not reachable')
  const options = { store: db, cache, schema: unique('lupa_close'), keyPrefix: `${unique('lupa-close')}:` }
  try {
    const r = child('mixed', options)
    assert.ok(r.summary >= 32)
  } finally {
    const cleanup = await Lupa.open(options)
    const probe = cleanup.cacheProbe()
    if (probe) await probe.clear()
    await cleanup.dropStorage()
    await cleanup.close()
  }
})

test('lone surrogates, Buffers and typed arrays for every string argument', () => {
  const r = child('strings')
  assert.ok(r.summary > 500, `${r.summary} calls`)
})
