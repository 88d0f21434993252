import { defineConfig } from 'vite';

// The gateway (nginx, :8080 in development) serves the services under /api/..., presigned
// storage links under /s3/ and the JWKS under /.well-known/; the dev server forwards them there so
// the console talks to one origin exactly as it does when the gateway serves it.
const gateway = process.env.ALMONER_GATEWAY_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  server: {
    proxy: {
      '/api': { target: gateway, changeOrigin: false },
      '/s3': { target: gateway, changeOrigin: false },
      '/.well-known': { target: gateway, changeOrigin: false },
    },
  },
  preview: {
    proxy: {
      '/api': { target: gateway, changeOrigin: false },
      '/s3': { target: gateway, changeOrigin: false },
      '/.well-known': { target: gateway, changeOrigin: false },
    },
  },
  build: {
    outDir: 'dist',
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 600,
  },
});
