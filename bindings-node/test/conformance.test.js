'use strict'
// Every vector file, through the addon's public API, on every backend pair.

const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { loadDirs, loadFile, configBackend, run, summary, DIR_ENV } = require('./conformance')
const { postgres, redis, vectorsDir } = require('./support')

async function runPair(t, store, cache) {
  const files = loadDirs([vectorsDir])
  const report = await run(files, configBackend(store, cache))
  t.diagnostic(summary(report))
  console.log(summary(report))
  for (const f of report.failures) console.log(`  FAILED ${f.file} / ${f.scenario} / step ${f.step}: ${f.message}`)
  assert.ok(report.passed > 0, `${report.label}: no scenario ran`)
  assert.deepStrictEqual(report.failures, [], `${report.label}: ${report.failures.length} scenario(s) failed`)
  assert.strictEqual(report.skipped, 0)
}

test('conformance memory+memory', (t) => runPair(t, 'memory://', 'memory://'))

test('conformance sqlite+memory', (t) => runPair(t, 'sqlite::memory:', 'memory://'))

test('conformance postgres+redis', async (t) => {
  const [db, cache] = [await postgres(), await redis()]
  if (!db || !cache) return t.skip('PostgreSQL or Redis is not reachable')
  await runPair(t, db, cache)
})

test('a set but missing or empty LUPA_CONFORMANCE_DIR fails', () => {
  const saved = process.env[DIR_ENV]
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'lupa-vectors-'))
  try {
    process.env[DIR_ENV] = path.join(empty, 'missing')
    assert.throws(() => loadDirs([vectorsDir]), /vector directory/)
    process.env[DIR_ENV] = empty
    assert.throws(() => loadDirs([vectorsDir]), /holds no \*\.json file/)
  } finally {
    if (saved === undefined) delete process.env[DIR_ENV]
    else process.env[DIR_ENV] = saved
    fs.rmSync(empty, { recursive: true, force: true })
  }
})

test('unknown ops, arguments and expectation fields fail the scenario', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lupa-vectors-'))
  try {
    const bad = (steps, requires) => ({ name: JSON.stringify(steps), requires, steps })
    fs.writeFileSync(
      path.join(dir, 'bad.json'),
      JSON.stringify({
        description: 'each scenario must fail',
        scenarios: [
          bad([{ op: 'teleport' }]),
          bad([{ op: 'create_project', project: 'p1', colour: 'red' }]),
          bad([{ op: 'create_project', project: 'p1', expect: { colour: 'red' } }]),
          bad([{ op: 'create_project', project: 'p1', expect: { error: 'PROJECT_EXISTS', colour: 1 } }]),
          bad([{ op: 'cache_get', key: 'k', expect: { colour: 1 } }], ['cache']),
          bad([{ op: 'create_project', project: 'p1' }], ['gpu']),
        ],
      }),
    )
    const files = [loadFile(path.join(dir, 'bad.json'))]
    const report = await run(files, configBackend('memory://', 'memory://'))
    assert.strictEqual(report.passed, 0)
    assert.strictEqual(report.failures.length, 6, JSON.stringify(report.failures))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
