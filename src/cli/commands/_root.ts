/** The package root (the directory holding package.json and binding.gyp), found upward from this file. */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DeltaEditError } from "../../errors.js";

export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(path.join(dir, "binding.gyp"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new DeltaEditError("E_NOT_FOUND", "cannot find the deltaedit package root (package.json + binding.gyp)");
    dir = up;
  }
}
