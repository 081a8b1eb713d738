// A route that needs no deployment: the middleware checked the key and the
// project only (and a Deployment-Id, when one was sent).
export const dynamic = 'force-dynamic'

export async function GET(request: Request) {
  return Response.json({
    projectId: request.headers.get('x-lupa-project-id'),
    deploymentId: request.headers.get('x-lupa-deployment-id'),
  })
}
