import { defineConfig, type Plugin } from 'vite';

// The chat widget (console/widget/), built on its own as one small script: a self-contained IIFE,
// dist/widget.js, next to the console's build (the gateway serves the build's root files at /<name>, so it is
// /widget.js). Run after the console's own build: emptyOutDir is off so that build stays.
const LIMIT_BYTES = 25 * 1024;

function sizeBudget(): Plugin {
  return {
    name: 'almoner-widget-size',
    generateBundle(_options, bundle) {
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk') continue;
        const bytes = Buffer.byteLength(chunk.code);
        console.log(`widget: ${chunk.fileName} is ${bytes} bytes minified (budget ${LIMIT_BYTES})`);
        if (bytes > LIMIT_BYTES) this.error(`${chunk.fileName} is ${bytes} bytes, over the widget's budget of ${LIMIT_BYTES}`);
      }
    },
  };
}

export default defineConfig({
  publicDir: false,
  plugins: [sizeBudget()],
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    // Class fields and private members stay native (es2022; with the DOM calls used, Chrome and Edge 86, Firefox
    // 90, Safari 15): an older target would define helper functions outside the IIFE, as globals of the host page.
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: true,
    lib: {
      entry: 'widget/widget.ts',
      name: 'AlmonerWidgetBundle',
      formats: ['iife'],
      fileName: () => 'widget.js',
    },
  },
});
