export default function Home() {
  return (
    <main>
      <h1>Lupa + Next.js</h1>
      <p>
        Send <code>GET /api/search</code> to <code>&lt;project&gt;.localhost</code> with{' '}
        <code>Authorization: Bearer lupa_sk_live_…</code> (production), a <code>test</code> key (staging), or a{' '}
        <code>Deployment-Id</code> header.
      </p>
    </main>
  )
}
