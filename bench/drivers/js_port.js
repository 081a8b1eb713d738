#!/usr/bin/env node
'use strict'
// Driver of impl `js-port`: the seed's middleware as ported in
// bench/ports/js/seed-port.js (one pg.Pool, one ioredis client, sequential
// awaits). A live API key resolves to production (seed lines 176-180).
const path = require('node:path')
const { main, prodId, stgId } = require('./harness')
const { createSeedPort, seedKeys } = require(path.join(__dirname, '..', 'ports', 'js', 'seed-port.js'))

main('js-port', async (args) => {
  const port = createSeedPort({ databaseUrl: args.store, redisUrl: args.cache, schema: args.schema })
  const answer = (r) => {
    if (!r.valid) throw new Error(`${r.error.code}: ${r.error.message}`)
    return r.deploymentId
  }
  return {
    resolveLive: async (p) => answer(await port.resolveAndValidateDeployment(p, null, true, 'production')),
    resolveExplicit: async (p, d) => answer(await port.resolveAndValidateDeployment(p, d, true, 'production')),
    promote: (p, d) => port.updateDeploymentEnvironment(p, d, 'production'),
    coldPrepare: async () => {},
    coldKeys: (p) => seedKeys(p, [prodId(p), stgId(p)]),
    close: () => port.close(),
  }
})
