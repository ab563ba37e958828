/**
 * The folder tree is the layer diagram: imports only flow down
 * (cli → eval → edit → model → kernels; util and errors.ts are below everything), and no
 * module in src/ keeps top-level mutable state (`let`/`var` at column 0), except the addon
 * loader's memo in kernels/native.ts.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { repoRoot } from "./helpers/paths.js";

const RANK: Record<string, number> = { util: 0, "errors.ts": 0, kernels: 1, model: 2, edit: 3, eval: 4, cli: 5, "index.ts": 6 };

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
}

function layerOf(src: string, file: string): string {
  return path.relative(src, file).split(path.sep)[0]!;
}

test("imports only flow down the layers", () => {
  const src = path.join(repoRoot(), "src");
  const bad: string[] = [];
  for (const file of walk(src)) {
    const from = layerOf(src, file);
    const text = fs.readFileSync(file, "utf8");
    for (const m of text.matchAll(/^\s*(?:import|export)[^'"]*from\s+["'](\.[^"']+)["']/gm)) {
      const target = path.resolve(path.dirname(file), m[1]!);
      const to = layerOf(src, target.replace(/\.js$/, ".ts"));
      if ((RANK[to] ?? 99) > (RANK[from] ?? -1)) bad.push(`${path.relative(src, file)} imports ${m[1]} (${from} → ${to})`);
    }
  }
  assert.deepEqual(bad, [], "upward imports found");
});

test("no top-level mutable state in src/", () => {
  const src = path.join(repoRoot(), "src");
  const bad: string[] = [];
  for (const file of walk(src)) {
    if (path.relative(src, file) === path.join("kernels", "native.ts")) continue;
    const lines = fs.readFileSync(file, "utf8").split("\n");
    lines.forEach((l, i) => {
      if (/^(export\s+)?(let|var)\s/.test(l)) bad.push(`${path.relative(src, file)}:${i + 1}: ${l.trim()}`);
    });
  }
  assert.deepEqual(bad, [], "top-level let/var found");
});
