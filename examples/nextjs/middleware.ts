import { NextResponse, type NextRequest } from 'next/server'
import { lupa } from './lib/lupa'

// lupa-core is a native addon: it needs the Node.js middleware runtime
// (stable since Next.js 15.5; the Edge runtime cannot load native code).
export const config = {
  runtime: 'nodejs',
  matcher: '/api/:path*',
}

// Requests name their project by subdomain: abc1234567.lupa.build, or
// abc1234567.localhost:3000 in development.
const rootDomain = process.env.LUPA_ROOT_DOMAIN ?? 'localhost'

// Routes that answer without a deployment (they still check the key and the
// project, and honour a Deployment-Id).
const withoutDeployment = ['/api/status']

export async function middleware(request: NextRequest) {
  const result = await (await lupa()).resolveRequest({
    rootDomain,
    headers: request.headers,
    requiresDeployment: !withoutDeployment.includes(request.nextUrl.pathname),
  })
  if (!result.ok) {
    return new NextResponse(result.body, {
      status: result.status,
      headers: { 'content-type': 'application/json' },
    })
  }
  // Forward the answer to the route; never trust these headers from outside.
  const headers = new Headers(request.headers)
  headers.set('x-lupa-project-id', result.projectId)
  headers.delete('x-lupa-deployment-id')
  if (result.deploymentId !== null) headers.set('x-lupa-deployment-id', result.deploymentId)
  return NextResponse.next({ request: { headers } })
}
