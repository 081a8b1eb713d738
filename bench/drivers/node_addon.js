#!/usr/bin/env node
'use strict'
// Driver of impls `node-addon` (--local on, the default: the in-process tier
// in front of Redis) and `node-addon-redis-only` (--local off): the lupa-core
// Node addon (bindings-node). bench/run points NAPI_RS_NATIVE_LIBRARY_PATH at
// a release build; LUPA_NODE_BINDING may name another package directory.
const fs = require('node:fs')
const path = require('node:path')
const { main, Unsupported, prodId, stgId } = require('./harness')
const { seedKeys } = require(path.join(__dirname, '..', 'ports', 'js', 'seed-port.js'))

const bindingDir = process.env.LUPA_NODE_BINDING || path.join(__dirname, '..', '..', 'bindings-node')

// Whether the binding has the option that turns the in-process tier off
// (core Config `local_cache`). napi-rs ignores unknown object fields, so
// passing it to a binding without it would silently measure the default:
// the declaration file is the contract that says the option exists.
function bindingHasLocalCacheOption() {
  const dts = fs.readFileSync(path.join(bindingDir, 'index.d.ts'), 'utf8')
  return /^\s*localCache\??\s*:/m.test(dts)
}

main((args) => (args.local === 'off' ? 'node-addon-redis-only' : 'node-addon'), async (args) => {
  const { Lupa } = require(bindingDir)
  const options = { store: args.store, cache: args.cache, keyPrefix: args.prefix, schema: args.schema }
  if (args.local === 'off') {
    if (!bindingHasLocalCacheOption()) {
      // TODO(issue 6): the core Config gains `local_cache: bool`; once the
      // Node binding exposes it as OpenOptions.localCache this impl runs.
      throw new Unsupported(
        'the lupa-core Node binding has no `localCache` open option yet (index.d.ts), so the in-process tier cannot be turned off',
      )
    }
    options.localCache = false
  }
  const lupa = await Lupa.open(options)
  const probe = lupa.cacheProbe()
  if (!probe) throw new Error('the handle has no shared cache')
  return {
    resolveLive: async (p) => (await lupa.resolve({ project: p, apiKeyEnvironment: 'live' })).deployment,
    resolveExplicit: async (p, d) =>
      (await lupa.resolve({ project: p, deploymentId: d, apiKeyEnvironment: 'live' })).deployment,
    promote: (p, d) => lupa.promote(p, d),
    // Every library key behind the prefix (including any of its own beyond
    // the seed's names), once; the per-op DEL then removes the project's.
    coldPrepare: () => probe.clear(),
    coldKeys: (p) => seedKeys(p, [prodId(p), stgId(p)]).map((k) => args.prefix + k),
    close: () => lupa.close(),
  }
})
