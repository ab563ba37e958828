#!/usr/bin/env node
// The llama.cpp of the GGUF interop tests (test/export/gguf-*.test.ts): node-llama-cpp, pinned, with
// ONLY the CPU platform package of this machine (@node-llama-cpp/<platform>-<arch>, prebuilt llama.cpp
// binaries), installed into .llamacpp/ at the repository root (git-ignored), never into node_modules:
// node-llama-cpp's optional platform packages (CPU, Vulkan, CUDA variants) are ~730 MB, so it is not a
// devDependency and `npm ci` never installs it. `npm test` runs this first (package.json "pretest").
//
//   node scripts/ensure-llamacpp.cjs                 install or check; exit 1 if it cannot be installed
//   node scripts/ensure-llamacpp.cjs --warn-only     same, but only warn on failure (exit 0): the pretest
//                                                    step, so that the suite still runs and the GGUF
//                                                    interop tests fail with the reason
//
// Idempotent: when .llamacpp/ already holds the pinned versions it does nothing (a few ms); on any
// mismatch it reinstalls. The install is staged in .llamacpp/.staging-<pid> and moved into place only
// when complete. Nothing is downloaded or compiled by node-llama-cpp itself (--ignore-scripts and
// NODE_LLAMA_CPP_SKIP_DOWNLOAD=true); the tests load it with build: "never".
// Prints one line saying what it did. The tests require this file for the pin and the check.
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

/** node-llama-cpp version (3.22.1's mac, Windows and riscv platform packages are missing from the registry). */
const VERSION = "3.21.1";
const ROOT = path.resolve(__dirname, "..");
const PREFIX = path.join(ROOT, ".llamacpp");
const MODULES = path.join(PREFIX, "node_modules");

/** node-llama-cpp 3.21.1's CPU platform package for `${process.platform}-${process.arch}` (Apple silicon has only the Metal build). */
const PLATFORM_PACKAGES = {
  "linux-x64": "linux-x64",
  "linux-arm64": "linux-arm64",
  "linux-arm": "linux-armv7l",
  "linux-riscv64": "linux-riscv64",
  "darwin-x64": "mac-x64",
  "darwin-arm64": "mac-arm64-metal",
  "win32-x64": "win-x64",
  "win32-arm64": "win-arm64",
};

/** The platform package's name for this machine, or null where node-llama-cpp has none. */
function platformPackage() {
  const p = PLATFORM_PACKAGES[`${process.platform}-${process.arch}`];
  return p ? `@node-llama-cpp/${p}` : null;
}

function readVersion(modules, name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(modules, ...name.split("/"), "package.json"), "utf8")).version ?? null;
  } catch {
    return null;
  }
}

/** node-llama-cpp's ES module entry in `modules`. */
function entry(modules = MODULES) {
  const dir = path.join(modules, "node-llama-cpp");
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const e = pkg.exports?.["."];
  return path.join(dir, (typeof e === "string" ? e : (e?.import ?? e?.default)) ?? pkg.main ?? "index.js");
}

/** Whether `modules` holds node-llama-cpp VERSION and this machine's platform package VERSION: { ok, problem }. */
function check(modules = MODULES) {
  const plat = platformPackage();
  if (!plat) return { ok: false, problem: `node-llama-cpp ${VERSION} has no prebuilt llama.cpp for ${process.platform}-${process.arch}` };
  const rel = path.relative(ROOT, modules) || ".";
  const problems = [];
  const missing = [];
  for (const name of ["node-llama-cpp", plat]) {
    const v = readVersion(modules, name);
    if (v === null) missing.push(name);
    else if (v !== VERSION) problems.push(`${rel} has ${name} ${v}, not ${VERSION}`);
  }
  if (missing.length > 0) problems.unshift(`${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not in ${rel}`);
  if (problems.length === 0) {
    try {
      if (!fs.existsSync(entry(modules))) problems.push(`${rel}/node-llama-cpp is incomplete (no entry file)`);
    } catch (e) {
      problems.push(`${rel}/node-llama-cpp/package.json is unreadable (${e.message})`);
    }
  }
  return problems.length === 0 ? { ok: true } : { ok: false, problem: problems.join("; ") };
}

function duBytes(p) {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const f of fs.readdirSync(p)) n += duBytes(path.join(p, f));
  return n;
}

/** argv to run npm: the npm that runs this script (npm test), else `npm` from PATH. */
function npmCommand(args) {
  const cli = process.env.npm_execpath;
  if (cli && /npm-cli\.c?js$/.test(cli)) return { cmd: process.execPath, args: [cli, ...args], shell: false };
  return { cmd: "npm", args, shell: process.platform === "win32" };
}

/** npm's error in one line: its code, its first message line, and where its log is. */
function npmReason(out, status) {
  const lines = out.split("\n").map((l) => l.replace(/^npm (error|ERR!)\s?/, "").replace(/^notarget /, "").trim());
  const code = lines.map((l) => /^code (\S+)$/.exec(l)?.[1]).find(Boolean);
  const msg = lines.find((l) => l !== "" && !/^(code|syscall|errno|at|path) |^[{}]|^\w+: '|^A complete log/.test(l));
  const log = lines.map((l) => /^A complete log of this run can be found in:?\s*(.+)$/.exec(l)?.[1]).find(Boolean);
  return [code, msg].filter(Boolean).join(" ") + (log ? ` (npm's log: ${log})` : "") || `exit status ${status}`;
}

/** Install into a staging prefix, then move its node_modules into .llamacpp/. Throws with npm's reason. */
function install(plat) {
  fs.mkdirSync(PREFIX, { recursive: true });
  for (const f of fs.readdirSync(PREFIX)) if (f.startsWith(".staging-")) fs.rmSync(path.join(PREFIX, f), { recursive: true, force: true });
  const staging = path.join(PREFIX, `.staging-${process.pid}`);
  fs.mkdirSync(staging);
  try {
    // --omit=optional keeps out node-llama-cpp's other platform packages (Vulkan, CUDA, arm, …); the one
    // named on the command line is installed all the same.
    const npm = npmCommand([
      "install", "--prefix", staging, "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
      "--ignore-scripts", "--omit=optional", "--loglevel=error",
      `node-llama-cpp@${VERSION}`, `${plat}@${VERSION}`,
    ]);
    const r = spawnSync(npm.cmd, npm.args, {
      cwd: ROOT,
      shell: npm.shell,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true" },
    });
    if (r.error || r.status !== 0) throw new Error(`npm install failed: ${r.error ? r.error.message : npmReason(`${r.stderr ?? ""}\n${r.stdout ?? ""}`, r.status)}`);
    const st = check(path.join(staging, "node_modules"));
    if (!st.ok) throw new Error(`npm install finished but ${st.problem}`);
    fs.rmSync(MODULES, { recursive: true, force: true });
    fs.renameSync(path.join(staging, "node_modules"), MODULES);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function main() {
  const warnOnly = process.argv.includes("--warn-only");
  const plat = platformPackage();
  const what = `node-llama-cpp@${VERSION} + ${plat ?? "(no platform package)"}@${VERSION}`;
  const before = check();
  if (before.ok) {
    console.log(`ensure-llamacpp: ${what} already in .llamacpp/ (nothing to do)`);
    return 0;
  }
  const t0 = Date.now();
  const had = fs.existsSync(MODULES);
  try {
    if (!plat) throw new Error(before.problem);
    install(plat);
    const mb = duBytes(PREFIX) / 1e6;
    const was = had ? ` (replacing what was there: ${before.problem})` : "";
    console.log(`ensure-llamacpp: installed ${what} into .llamacpp/, ${mb.toFixed(0)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s${was}`);
    return 0;
  } catch (e) {
    const msg =
      `ensure-llamacpp: ${warnOnly ? "WARNING: " : ""}could not install ${what} into .llamacpp/: ${e.message}. ` +
      `The GGUF interop tests (test/export/gguf-*.test.ts) need it${warnOnly ? " and will fail" : ""}; ` +
      `run \`node scripts/ensure-llamacpp.cjs\` where the npm registry is reachable.`;
    console.error(msg);
    return warnOnly ? 0 : 1;
  }
}

module.exports = { VERSION, PREFIX, MODULES, platformPackage, check, entry };

if (require.main === module) process.exitCode = main();
