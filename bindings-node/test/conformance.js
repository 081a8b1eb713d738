'use strict'
// The conformance runner: runs the JSON vectors (the semantics as data)
// through the addon's public API. The JavaScript counterpart of the core's
// Rust runner; `cache_*` steps use the documented test hook
// `lupa.cacheProbe()`.

const fs = require('node:fs')
const path = require('node:path')
const assert = require('node:assert')
const { Lupa, parseApiKey } = require('..')
const { unique } = require('./support')

const DIR_ENV = 'LUPA_CONFORMANCE_DIR'

/** Every *.json file of each directory plus LUPA_CONFORMANCE_DIR's; a missing or empty directory throws. */
function loadDirs(dirs) {
  const all = [...dirs]
  if (process.env[DIR_ENV] !== undefined) all.push(process.env[DIR_ENV])
  const files = []
  for (const dir of all) {
    let names
    try {
      names = fs.readdirSync(dir)
    } catch (e) {
      throw new Error(`vector directory ${dir}: ${e.message}`)
    }
    names = names.filter((n) => n.endsWith('.json')).sort()
    if (names.length === 0) throw new Error(`vector directory ${dir} holds no *.json file`)
    for (const name of names) files.push(loadFile(path.join(dir, name)))
  }
  return files
}

function loadFile(file) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'))
  if (!Array.isArray(doc.scenarios)) throw new Error(`${file}: no "scenarios" list`)
  const scenarios = doc.scenarios.map((s) => {
    if (typeof s.name !== 'string') throw new Error(`${file}: a scenario has no name`)
    const requires = s.requires ?? []
    if (!Array.isArray(requires) || requires.some((r) => typeof r !== 'string')) {
      throw new Error(`${file}: ${s.name}: "requires" must be a list of strings`)
    }
    if (!Array.isArray(s.steps)) throw new Error(`${file}: ${s.name}: no "steps" list`)
    return { name: s.name, requires, steps: s.steps }
  })
  return { file, name: path.basename(file), scenarios }
}

/**
 * A backend from store and cache URLs: each scenario gets its own key prefix
 * and, on PostgreSQL, its own schema, dropped afterwards.
 */
function configBackend(store, cache) {
  const kind = (url) => url.split(':')[0] || url
  return {
    label: `${kind(store)}+${kind(cache)}`,
    async open() {
      const tag = unique('lupa_node')
      const options = { store, cache, keyPrefix: `${tag}:` }
      if (store.startsWith('postgres')) options.schema = tag
      return Lupa.open(options)
    },
    async cleanup(lupa) {
      const probe = lupa.cacheProbe()
      if (probe) await probe.clear().catch(() => {})
      await lupa.dropStorage().catch(() => {})
      await lupa.close()
    },
  }
}

class StepError extends Error {}

/** The arguments of one step, each taken at most once; what is left over is unknown. */
class Args {
  constructor(map) {
    this.map = { ...map }
  }
  optStr(name) {
    if (!(name in this.map)) return undefined
    const v = this.map[name]
    delete this.map[name]
    if (v === null) return null
    if (typeof v !== 'string') throw new StepError(`argument ${name} must be a string, not ${JSON.stringify(v)}`)
    return v
  }
  str(name) {
    const v = this.optStr(name)
    if (v === undefined || v === null) throw new StepError(`argument ${name} is required`)
    return v
  }
  optBool(name) {
    if (!(name in this.map)) return undefined
    const v = this.map[name]
    delete this.map[name]
    if (typeof v !== 'boolean') throw new StepError(`argument ${name} must be a boolean, not ${JSON.stringify(v)}`)
    return v
  }
  has(name) {
    return name in this.map
  }
  finish() {
    const left = Object.keys(this.map)
    if (left.length > 0) throw new StepError(`unknown argument ${JSON.stringify(left[0])}`)
  }
}

/** Objects match when every listed field matches; everything else exactly. */
function matches(want, got) {
  if (want !== null && typeof want === 'object' && !Array.isArray(want)) {
    if (got === null || typeof got !== 'object' || Array.isArray(got)) return false
    return Object.entries(want).every(([k, v]) => k in got && matches(v, got[k]))
  }
  try {
    assert.deepStrictEqual(got, want)
    return true
  } catch {
    return false
  }
}

async function attempt(fn) {
  try {
    return { ok: true, value: await fn() }
  } catch (error) {
    if (typeof error?.code !== 'string' || typeof error?.httpStatus !== 'number') {
      throw new StepError(`a failure without a Lupa code: ${error?.stack ?? error}`)
    }
    return { ok: false, error }
  }
}

async function runStep(lupa, step) {
  if (step === null || typeof step !== 'object' || Array.isArray(step)) throw new StepError('a step must be an object')
  const { op, expect, ...rest } = step
  if (typeof op !== 'string') throw new StepError('a step needs an "op" string')
  if (expect !== undefined && (expect === null || typeof expect !== 'object' || Array.isArray(expect))) {
    throw new StepError('"expect" must be an object')
  }
  const args = new Args(rest)
  if (op.startsWith('cache_')) return cacheStep(lupa, op, args, expect ?? {})
  let result
  let fields
  switch (op) {
    case 'create_project': {
      const id = args.str('project')
      const orgId = args.optStr('org_id') ?? 'org_conformance'
      const name = args.optStr('name') ?? 'Conformance'
      args.finish()
      result = await attempt(async () => {
        const p = await lupa.createProject({ id, orgId, name })
        return { project: p.id, org_id: p.orgId, name: p.name }
      })
      fields = []
      break
    }
    case 'create_deployment': {
      const project = args.str('project')
      const id = args.str('deployment')
      const snapshot = args.optStr('snapshot') ?? 'snp_conformance'
      const environment = args.optStr('environment') ?? undefined
      const createdAt = args.optStr('created_at') ?? undefined
      args.finish()
      result = await attempt(async () => {
        const { deployment: d } = await lupa.createDeployment({ project, id, snapshot, environment, createdAt })
        return { environment: d.environment, status: d.status }
      })
      fields = ['environment', 'status']
      break
    }
    case 'set_status': {
      const id = args.str('deployment')
      const status = args.str('status')
      const message = args.optStr('message')
      args.finish()
      result = await attempt(async () => {
        const { deployment: d } = await lupa.setStatus(id, status, message)
        return { status: d.status }
      })
      fields = ['status']
      break
    }
    case 'promote':
    case 'rollback': {
      const project = args.str('project')
      const deployment = op === 'promote' ? args.str('deployment') : undefined
      args.finish()
      result = await attempt(async () => {
        const p = op === 'promote' ? await lupa.promote(project, deployment) : await lupa.rollback(project)
        return { deployment: p.deployment }
      })
      fields = ['deployment']
      break
    }
    case 'set_environment': {
      const project = args.str('project')
      const id = args.str('deployment')
      const environment = args.str('environment')
      args.finish()
      result = await attempt(async () => {
        const { deployment: d } = await lupa.setEnvironment(project, id, environment)
        return { environment: d.environment }
      })
      fields = ['environment']
      break
    }
    case 'delete_deployment': {
      const project = args.str('project')
      const id = args.str('deployment')
      args.finish()
      result = await attempt(async () => {
        await lupa.deleteDeployment(project, id)
        return {}
      })
      fields = []
      break
    }
    case 'resolve': {
      const request = { project: args.str('project') }
      const deploymentId = args.optStr('deployment_id')
      if (deploymentId !== undefined) request.deploymentId = deploymentId
      const requires = args.optBool('requires_deployment')
      if (requires !== undefined) request.requiresDeployment = requires
      const keyEnv = args.optStr('api_key_environment')
      if (keyEnv !== undefined) request.apiKeyEnvironment = keyEnv
      const key = args.optStr('api_key')
      if (key !== undefined) request.apiKey = key
      const internal = args.optBool('internal')
      if (internal !== undefined) request.internal = internal
      const hasTarget = args.has('target_environment')
      const target = args.optStr('target_environment')
      if (target !== undefined) request.targetEnvironment = target
      args.finish()
      if (hasTarget && !internal) throw new StepError('target_environment without internal')
      result = await attempt(async () => {
        const r = await lupa.resolve(request)
        return { deployment: r.deployment }
      })
      fields = ['deployment']
      break
    }
    case 'parse_api_key': {
      const key = args.str('key')
      args.finish()
      result = await attempt(async () => {
        const i = parseApiKey(key)
        return { key_type: i.keyType, environment: i.environment }
      })
      fields = ['key_type', 'environment']
      break
    }
    case 'get_deployment': {
      const id = args.str('deployment')
      args.finish()
      result = await attempt(async () => {
        const d = await lupa.getDeployment(id)
        return { project: d.projectId, environment: d.environment, status: d.status }
      })
      fields = ['project', 'environment', 'status']
      break
    }
    case 'list_deployments': {
      const project = args.str('project')
      args.finish()
      result = await attempt(async () => {
        const ids = []
        let cursor
        for (;;) {
          const page = await lupa.listDeployments(project, { cursor })
          ids.push(...page.items.map((d) => d.id))
          if (page.nextCursor === null) break
          cursor = page.nextCursor
        }
        return { ids }
      })
      fields = ['ids']
      break
    }
    default:
      throw new StepError(`unknown op ${JSON.stringify(op)}`)
  }
  check(op, result, expect ?? {}, fields)
}

function check(op, result, expect, fields) {
  if ('error' in expect) {
    const extra = Object.keys(expect).find((k) => k !== 'error' && k !== 'http_status')
    if (extra) throw new StepError(`${op}: unknown expectation field ${JSON.stringify(extra)} beside "error"`)
    if (result.ok) throw new StepError(`${op}: expected error ${expect.error}, got success ${JSON.stringify(result.value)}`)
    const e = result.error
    if (e.code !== expect.error) throw new StepError(`${op}: expected error ${expect.error}, got ${e.code} (${e.message})`)
    if ('http_status' in expect && e.httpStatus !== expect.http_status) {
      throw new StepError(`${op}: expected http_status ${expect.http_status}, got ${e.httpStatus}`)
    }
    return
  }
  if (!result.ok) throw new StepError(`${op}: expected success, got ${result.error.code} (${result.error.message})`)
  for (const [field, want] of Object.entries(expect)) {
    if (!fields.includes(field)) throw new StepError(`${op}: unknown expectation field ${JSON.stringify(field)}`)
    const got = result.value[field] ?? null
    if (!matches(want, got)) {
      throw new StepError(`${op}: field ${field}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`)
    }
  }
}

async function cacheStep(lupa, op, args, expect) {
  const probe = lupa.cacheProbe()
  if (!probe) throw new StepError('a cache step in a backend without a cache')
  const allowed = { cache_get: ['value', 'json', 'one_of'], cache_ttl: ['min', 'max', 'absent'] }[op] ?? []
  const extra = Object.keys(expect).find((k) => !allowed.includes(k))
  if (extra) throw new StepError(`${op}: unknown expectation field ${JSON.stringify(extra)}`)
  switch (op) {
    case 'cache_clear':
      args.finish()
      return probe.clear()
    case 'cache_set': {
      const key = args.str('key')
      const value = args.str('value')
      if (!args.has('ttl') || !Number.isInteger(args.map.ttl) || args.map.ttl < 0) {
        throw new StepError('argument ttl (whole seconds) is required')
      }
      const ttl = args.map.ttl
      delete args.map.ttl
      args.finish()
      return probe.set(key, value, ttl)
    }
    case 'cache_get': {
      const key = args.str('key')
      args.finish()
      const got = await probe.get(key)
      if ('value' in expect && expect.value !== got) {
        throw new StepError(`cache_get ${key}: expected ${JSON.stringify(expect.value)}, got ${JSON.stringify(got)}`)
      }
      if ('one_of' in expect) {
        if (!Array.isArray(expect.one_of)) throw new StepError('one_of must be a list')
        if (!expect.one_of.includes(got)) {
          throw new StepError(`cache_get ${key}: expected one of ${JSON.stringify(expect.one_of)}, got ${JSON.stringify(got)}`)
        }
      }
      if ('json' in expect) {
        let parsed
        try {
          parsed = JSON.parse(got)
        } catch {
          throw new StepError(`cache_get ${key}: expected JSON ${JSON.stringify(expect.json)}, got ${JSON.stringify(got)}`)
        }
        if (!matches(expect.json, parsed)) {
          throw new StepError(`cache_get ${key}: expected JSON ${JSON.stringify(expect.json)}, got ${got}`)
        }
      }
      return
    }
    case 'cache_ttl': {
      const key = args.str('key')
      args.finish()
      const ttl = await probe.ttl(key)
      if (expect.absent === true) {
        if (ttl !== null) throw new StepError(`cache_ttl ${key}: expected absent, got ${ttl} s`)
        return
      }
      if (ttl === null) throw new StepError(`cache_ttl ${key}: the key is absent`)
      // Whole seconds, rounded up, as the Rust runner compares them.
      const secs = Math.ceil(ttl)
      const min = expect.min ?? 0
      const max = expect.max ?? Infinity
      if (secs < min || secs > max) throw new StepError(`cache_ttl ${key}: expected ${min}..=${max} s, got ${secs} s`)
      return
    }
    default:
      throw new StepError(`unknown op ${JSON.stringify(op)}`)
  }
}

/** Runs every scenario of `files` on `backend`; resolves to {label, passed, skipped, failures}. */
async function run(files, backend) {
  const report = { label: backend.label, passed: 0, skipped: 0, failures: [] }
  for (const file of files) {
    for (const scenario of file.scenarios) {
      const fail = (step, message) => report.failures.push({ file: file.name, scenario: scenario.name, step, message })
      const unknown = scenario.requires.find((r) => r !== 'cache')
      if (unknown !== undefined) {
        fail(null, `unknown requirement ${JSON.stringify(unknown)}`)
        continue
      }
      let lupa
      try {
        lupa = await backend.open()
      } catch (e) {
        fail(null, `could not open: ${e.code ?? ''} ${e.message}`)
        continue
      }
      if (scenario.requires.includes('cache') && lupa.cacheProbe() === null) {
        report.skipped += 1
        await backend.cleanup(lupa)
        continue
      }
      let failed = null
      for (const [i, step] of scenario.steps.entries()) {
        try {
          await runStep(lupa, step)
        } catch (e) {
          failed = [i, e instanceof StepError ? e.message : `${e.stack ?? e}`]
          break
        }
      }
      await backend.cleanup(lupa)
      if (failed) fail(...failed)
      else report.passed += 1
    }
  }
  return report
}

function summary(report) {
  return `conformance ${report.label}: ${report.passed} passed, ${report.failures.length} failed, ${report.skipped} skipped`
}

module.exports = { loadDirs, loadFile, configBackend, run, summary, DIR_ENV }
