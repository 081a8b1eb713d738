// A route that needs a deployment: the middleware resolved it.
export const dynamic = 'force-dynamic'

export async function GET(request: Request) {
  const projectId = request.headers.get('x-lupa-project-id')
  const deploymentId = request.headers.get('x-lupa-deployment-id')
  const query = new URL(request.url).searchParams.get('q') ?? ''
  // A real app would query the knowledge base of `deploymentId` here.
  return Response.json({ projectId, deploymentId, query })
}
