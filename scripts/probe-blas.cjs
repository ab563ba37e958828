#!/usr/bin/env node
// Probe for OpenBLAS + LAPACKE compile/link flags; called by binding.gyp:
//   node scripts/probe-blas.cjs --cflags   -> include flags
//   node scripts/probe-blas.cjs --libs     -> link flags
// Uses `pkg-config openblas lapacke`; falls back to the Debian/Ubuntu layout.
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");

const FALLBACK_CFLAGS = ["/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/include/openblas"]
  .filter((d) => fs.existsSync(d))
  .map((d) => `-I${d}`);
const FALLBACK_LIBS = ["-lopenblas", "-llapacke"];

function pkgConfig(flag) {
  try {
    const out = execFileSync("pkg-config", [flag, "openblas", "lapacke"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return out.trim().split(/\s+/).filter(Boolean);
  } catch {
    return null;
  }
}

const mode = process.argv[2];
if (mode === "--cflags") {
  process.stdout.write((pkgConfig("--cflags") ?? FALLBACK_CFLAGS).join(" ") + "\n");
} else if (mode === "--libs") {
  process.stdout.write((pkgConfig("--libs") ?? FALLBACK_LIBS).join(" ") + "\n");
} else {
  process.stderr.write("usage: node scripts/probe-blas.cjs --cflags | --libs\n");
  process.exit(2);
}
