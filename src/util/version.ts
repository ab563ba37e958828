import { readFileSync } from "node:fs";

/** The package version from package.json (two levels above the compiled module's folder: dist/<layer>/). */
export function packageVersion(): string {
  for (const rel of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version: string };
      if (pkg.name === "deltaedit") return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return "0.0.0";
}
