/** @type {import('next').NextConfig} */
const nextConfig = {
  // lupa-core is a native addon: the bundler must leave it (and its .node
  // file) alone, so Node loads it at run time with require().
  serverExternalPackages: ['lupa-core'],
  // Nothing is fetched at build time: no telemetry (NEXT_TELEMETRY_DISABLED=1),
  // no web fonts (none used), no lint step.
  eslint: { ignoreDuringBuilds: true },
  poweredByHeader: false,
}

export default nextConfig
