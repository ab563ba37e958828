/** Paths for tests: the repository root and the bundled fixture models. */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The directory holding package.json, searched upward from this file (works from src and dist-*). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Absolute path of `test/fixtures/models/<name>`. */
export function fixtureModel(name: string): string {
  return path.join(repoRoot(), "test", "fixtures", "models", name);
}
