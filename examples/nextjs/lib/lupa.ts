import { Lupa } from 'lupa-core'

// One handle per process. Next.js loads the middleware and each route in
// module graphs of their own, and `next dev` reloads modules on every edit;
// a handle kept on globalThis survives both, so the process never opens a
// second pool of connections. The Promise is stored, so concurrent first
// requests share one open.
const globalForLupa = globalThis as typeof globalThis & { __lupa?: Promise<Lupa> }

export function lupa(): Promise<Lupa> {
  globalForLupa.__lupa ??= Lupa.open({
    store: process.env.LUPA_STORE ?? 'sqlite://lupa.db',
    cache: process.env.LUPA_CACHE ?? 'memory://',
    schema: process.env.LUPA_SCHEMA || undefined,
    keyPrefix: process.env.LUPA_KEY_PREFIX || undefined,
  }).catch((error: unknown) => {
    // Let the next request try again instead of keeping a failed open.
    globalForLupa.__lupa = undefined
    throw error
  })
  return globalForLupa.__lupa
}
