'use strict'
// What the tests share: where the real services are, unique names, and the
// rule that a missing service fails under CI=true instead of skipping.

const net = require('node:net')
const path = require('node:path')
const crypto = require('node:crypto')

const databaseUrl = process.env.LUPA_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres'
const redisUrl = process.env.LUPA_TEST_REDIS_URL || 'redis://127.0.0.1:6379'
const ci = process.env.CI === 'true'

function hostPort(url, defaultPort) {
  const u = new URL(url)
  return { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port) || defaultPort }
}

function reachable(url, defaultPort) {
  const { host, port } = hostPort(url, defaultPort)
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** Resolves to the URL, or to null (a skip) when the service is down and CI is not set. */
async function service(what, url, defaultPort) {
  if (await reachable(url, defaultPort)) return url
  if (ci) throw new Error(`${what} is not reachable and CI=true: a missing service fails the run`)
  return null
}

const postgres = () => service('PostgreSQL', databaseUrl, 5432)
const redis = () => service('Redis', redisUrl, 6379)

/** A name no other run uses: for schemas and key prefixes. */
function unique(tag) {
  return `${tag}_${crypto.randomBytes(6).toString('hex')}`
}

const root = path.resolve(__dirname, '..', '..')
const vectorsDir = path.join(root, 'tests', 'conformance', 'vectors')

module.exports = { postgres, redis, unique, ci, root, vectorsDir, databaseUrl, redisUrl }
