'use strict'
/*
 * The shared loop of the Node drivers (js_port.js, node_addon.js): the five
 * cases of issue 6, each bounded in count and in time, timing every op with
 * process.hrtime and counting the Redis commands of the timed region from
 * `INFO commandstats` (excluding INFO itself and the driver's own set-up
 * commands, such as the per-op DEL of cold_seq).
 *
 * Data (made by `lupa-bench seed`): projects bp00000.., each with
 * {p}_prod (production, ready), {p}_stg (staging, ready), {p}_proc
 * (processing). Each driver prints one JSON line per case on stdout:
 *   {"impl","case","ops","ops_per_s","p50_us","p99_us","redis_calls_timed",...}
 * bench/run turns redis_calls_timed into redis_calls_per_op.
 */

const path = require('node:path')
const { createRequire } = require('node:module')

// ioredis comes from the JS port's pinned dependencies (bench/ports/js).
const portRequire = createRequire(path.join(__dirname, '..', 'ports', 'js', 'package.json'))
const Redis = portRequire('ioredis')

const CASES = ['warm_seq', 'warm_c64', 'cold_seq', 'explicit_seq', 'promote_seq']

class Unsupported extends Error {}

function parseArgs(argv) {
  const args = {
    store: process.env.LUPA_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    cache: null,
    schema: 'lupa_bench',
    prefix: 'lupa-bench:',
    case: CASES.join(','),
    ops: 1000,
    projects: 10000,
    seconds: 10,
    warmupSeconds: 120,
    local: 'on',
    concurrency: 64,
    seed: 1,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    switch (a) {
      case '--store': args.store = next(); break
      case '--cache': args.cache = next(); break
      case '--schema': args.schema = next(); break
      case '--prefix': args.prefix = next(); break
      case '--case': args.case = next(); break
      case '--ops': args.ops = Number(next()); break
      case '--projects': args.projects = Number(next()); break
      case '--seconds': args.seconds = Number(next()); break
      case '--warmup-seconds': args.warmupSeconds = Number(next()); break
      case '--local': args.local = next(); break
      case '--concurrency': args.concurrency = Number(next()); break
      case '--seed': args.seed = Number(next()); break
      default: throw new Error(`unknown argument ${a}`)
    }
  }
  if (!args.cache) throw new Error('--cache redis://… is required')
  if (!['on', 'off'].includes(args.local)) throw new Error('--local is on or off')
  for (const c of args.case.split(',')) {
    if (!CASES.includes(c)) throw new Error(`unknown case ${c} (one of ${CASES.join(', ')})`)
  }
  for (const k of ['ops', 'projects', 'seconds', 'concurrency']) {
    if (!(args[k] > 0)) throw new Error(`--${k} must be positive`)
  }
  return args
}

const projectId = (i) => `bp${String(i).padStart(5, '0')}`
const prodId = (p) => `${p}_prod`
const stgId = (p) => `${p}_stg`

// A small deterministic PRNG (mulberry32), so every impl draws the same
// sequence of projects for the same --seed.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function shuffled(n, rand) {
  const a = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

async function commandCalls(redis) {
  const text = await redis.info('commandstats')
  let total = 0
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
    if (m && m[1] !== 'info') total += Number(m[2])
  }
  return total
}

function percentile(sorted, q) {
  if (sorted.length === 0) return 0
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[idx]
}

const now = () => process.hrtime.bigint()
const usSince = (t0) => Number(now() - t0) / 1000

function expectEqual(got, want, what) {
  if (got !== want) throw new Error(`${what}: expected ${want}, got ${got}`)
}

/*
 * adapter:
 *   resolveLive(p)        -> deployment id (live key, no Deployment-Id)
 *   resolveExplicit(p, d) -> deployment id (live key, Deployment-Id d)
 *   promote(p, d)         -> makes d production
 *   coldPrepare()         -> once before cold_seq (outside the counts)
 *   coldKeys(p)           -> the keys to DEL before each cold op
 *   close()
 */
async function runCase(impl, caseName, args, adapter, redis) {
  const rand = rng(args.seed * 7919 + CASES.indexOf(caseName))
  const deadline = (seconds) => now() + BigInt(Math.round(seconds * 1e9))
  const order = shuffled(args.projects, rand).map(projectId)
  const lat = new Float64Array(args.ops)
  let ops = 0
  let setupCalls = 0
  let timedSeconds = 0
  let before, after
  let restore = null

  const warm = async (fn) => {
    const end = deadline(args.warmupSeconds)
    const warmed = []
    for (const p of order) {
      if (now() > end) break
      await fn(p)
      warmed.push(p)
    }
    if (warmed.length === 0) throw new Error('warm-up resolved no project')
    return warmed
  }

  if (caseName === 'warm_seq' || caseName === 'explicit_seq') {
    const explicit = caseName === 'explicit_seq'
    const one = explicit
      ? async (p) => expectEqual(await adapter.resolveExplicit(p, stgId(p)), stgId(p), `explicit ${p}`)
      : async (p) => expectEqual(await adapter.resolveLive(p), prodId(p), `resolve ${p}`)
    const set = await warm(one)
    const picks = Array.from({ length: args.ops }, () => set[Math.floor(rand() * set.length)])
    before = await commandCalls(redis)
    const end = deadline(args.seconds)
    let sum = 0
    for (; ops < args.ops && now() < end; ops++) {
      const p = picks[ops]
      const t0 = now()
      const got = explicit ? await adapter.resolveExplicit(p, stgId(p)) : await adapter.resolveLive(p)
      const us = usSince(t0)
      lat[ops] = us
      sum += us
      if (got !== (explicit ? stgId(p) : prodId(p))) throw new Error(`${p}: wrong answer ${got}`)
    }
    after = await commandCalls(redis)
    timedSeconds = sum / 1e6
  } else if (caseName === 'warm_c64') {
    const set = await warm(async (p) => expectEqual(await adapter.resolveLive(p), prodId(p), `resolve ${p}`))
    const pick = () => set[Math.floor(rand() * set.length)]
    // `concurrency` workers share one list of picks; each op's own latency.
    const concurrently = async (picks, end, record) => {
      let next = 0
      const worker = async () => {
        for (;;) {
          if (next >= picks.length || now() >= end) return
          const i = next++
          const p = picks[i]
          const t0 = now()
          const got = await adapter.resolveLive(p)
          if (record) record(i, usSince(t0))
          if (got !== prodId(p)) throw new Error(`${p}: wrong answer ${got}`)
        }
      }
      await Promise.all(Array.from({ length: args.concurrency }, worker))
    }
    // A short concurrent warm-up, so connections a client opens under
    // concurrency are open before the timed region.
    await concurrently(Array.from({ length: args.concurrency * 4 }, pick), deadline(args.warmupSeconds), null)
    const picks = Array.from({ length: args.ops }, pick)
    before = await commandCalls(redis)
    const t0 = now()
    await concurrently(picks, deadline(args.seconds), (i, us) => {
      lat[i] = us
      ops++
    })
    timedSeconds = usSince(t0) / 1e6
    after = await commandCalls(redis)
  } else if (caseName === 'cold_seq') {
    // Each project once, so no tier of this process holds its answer; its
    // keys are deleted right before its op, outside the timed region.
    // Connections are opened by resolving the last few projects, which the
    // cold loop never reaches.
    const spare = Math.min(10, order.length - 1)
    for (const p of order.slice(order.length - spare)) await adapter.resolveLive(p)
    await adapter.coldPrepare()
    const n = Math.min(args.ops, order.length - spare)
    before = await commandCalls(redis)
    const end = deadline(args.seconds)
    let sum = 0
    for (; ops < n && now() < end; ops++) {
      const p = order[ops]
      await redis.del(...adapter.coldKeys(p))
      setupCalls++
      const t0 = now()
      const got = await adapter.resolveLive(p)
      const us = usSince(t0)
      lat[ops] = us
      sum += us
      if (got !== prodId(p)) throw new Error(`${p}: wrong answer ${got}`)
    }
    after = await commandCalls(redis)
    timedSeconds = sum / 1e6
  } else if (caseName === 'promote_seq') {
    // Round robin over k (at most 50) projects, each op promoting the
    // deployment of the project that is staging now, so each project
    // alternates between its two ready deployments. The current production
    // is read first (outside the counts); any project left swapped is
    // swapped back after the timed region.
    const k = Math.max(1, Math.min(order.length, 50, Math.floor(args.ops / 2)))
    const set = order.slice(0, k)
    const current = new Map()
    for (const p of set) current.set(p, await adapter.resolveLive(p))
    before = await commandCalls(redis)
    const end = deadline(args.seconds)
    let sum = 0
    for (; ops < args.ops && now() < end; ops++) {
      const p = set[ops % k]
      const target = current.get(p) === prodId(p) ? stgId(p) : prodId(p)
      const t0 = now()
      await adapter.promote(p, target)
      const us = usSince(t0)
      lat[ops] = us
      sum += us
      current.set(p, target)
    }
    after = await commandCalls(redis)
    timedSeconds = sum / 1e6
    restore = async () => {
      for (const p of set) {
        if (current.get(p) !== prodId(p)) await adapter.promote(p, prodId(p))
      }
      for (const p of set) expectEqual(await adapter.resolveLive(p), prodId(p), `after restore ${p}`)
    }
  }

  const sorted = Array.from(lat.subarray(0, ops)).sort((a, b) => a - b)
  const line = {
    impl,
    case: caseName,
    ops,
    ops_per_s: timedSeconds > 0 ? round(ops / timedSeconds, 1) : 0,
    p50_us: round(percentile(sorted, 0.5), 2),
    p99_us: round(percentile(sorted, 0.99), 2),
    redis_calls_timed: after - before - setupCalls,
    seconds: round(timedSeconds, 3),
  }
  if (caseName === 'warm_c64') line.concurrency = args.concurrency
  if (restore) await restore()
  return line
}

function round(x, digits) {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/**
 * Runs every case named by --case and prints one JSON line each. `implName`
 * is the impl's name or a function of the parsed arguments giving it.
 */
async function main(implName, makeAdapter) {
  let args
  try {
    args = parseArgs(process.argv.slice(2))
  } catch (e) {
    console.error(`${typeof implName === 'function' ? 'driver' : implName}: ${e.message}`)
    process.exit(2)
  }
  const impl = typeof implName === 'function' ? implName(args) : implName
  const redis = new Redis(args.cache)
  let adapter
  try {
    adapter = await makeAdapter(args, redis)
    for (const c of args.case.split(',')) {
      const line = await runCase(impl, c, args, adapter, redis)
      process.stdout.write(`${JSON.stringify(line)}\n`)
    }
  } catch (e) {
    if (e instanceof Unsupported) {
      console.error(`${impl}: not available: ${e.message}`)
      process.exitCode = 3
    } else {
      console.error(`${impl}: ${e.stack || e}`)
      process.exitCode = 1
    }
  } finally {
    if (adapter) await adapter.close().catch(() => {})
    redis.disconnect()
  }
}

module.exports = { main, Unsupported, projectId, prodId, stgId }
