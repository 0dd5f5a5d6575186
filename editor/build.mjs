// Bundles src/page.js (the editor as the Rust page drives it, through the `pipescopeEditor` global
// it sets) with src/studio-editor.js and the CodeMirror packages into one minified ES module at
// public/editor/studio-editor.js. cargo-leptos copies public/ into the site root on every
// `cargo leptos build` (and `--precompress` writes its .gz/.br there), so pipescope serves it at
// /editor/studio-editor.js. Only the editor pages import it; the dashboard never loads it.
// `node build.mjs` (or `npm run build`) builds it and prints its raw and gzip sizes; with `--watch`
// it rebuilds on every change of src/ (and `cargo leptos watch` then copies it into the site).

import { build, context } from "esbuild";
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const outfile = join(here, "..", "public", "editor", "studio-editor.js");

const options = {
  entryPoints: [join(here, "src", "page.js")],
  outfile,
  bundle: true,
  format: "esm",
  minify: true,
  // The browsers that run the dashboard's WASM; CodeMirror needs nothing older.
  target: ["es2020"],
  // Every bundled package is MIT-licensed and none carries a notice in its code: name them once.
  banner: {
    js: "/* pipescope studio editor. Bundles CodeMirror 6 (@codemirror/*), Lezer (@lezer/*), style-mod, " +
      "w3c-keyname, crelt and find-cluster-break by Marijn Haverbeke and others, MIT licence. */",
  },
  logLevel: "warning",
};

if (process.argv.includes("--watch")) {
  await (await context({ ...options, logLevel: "info" })).watch();
} else {
  await build(options);
  report();
}

function report() {
  const code = readFileSync(outfile);
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(
    `${relative(process.cwd(), outfile)}: ${kib(code.length)} raw, ` +
      `${kib(gzipSync(code, { level: 9 }).length)} gzip`,
  );
}
