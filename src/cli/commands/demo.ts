import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DeltaEditError } from "../../errors.js";
import { bool, num, str, type CommandSpec } from "../args.js";
import { invokeBench } from "./bench.js";

/** The package root (the directory holding package.json), found upward from this file. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(path.join(dir, "worlds"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new DeltaEditError("E_NOT_FOUND", "demo: cannot find the package's worlds/ directory");
    dir = up;
  }
}

export const DEMO_WORLD = "factworld-v1";

export const command: CommandSpec = {
  name: "demo",
  summary: "run MEMIT, AlphaEdit and DeltaEdit on the bundled fact world and write the report",
  usage: "deltaedit demo [--edits N] [--out DIR] [--fresh]",
  options: {
    edits: { type: "number", description: "length of the edit stream", default: 600, valueName: "N" },
    methods: { type: "string", description: "methods to compare", default: "memit,alphaedit,deltaedit", valueName: "LIST" },
    out: { type: "string", description: "output directory (rerun to resume)", default: "runs/demo", valueName: "DIR" },
    fresh: { type: "boolean", description: "delete an earlier demo run in --out first" },
    json: { type: "boolean", description: "print results.json on stdout" },
  },
  async run(args, io) {
    const root = packageRoot();
    const world = path.join(root, "worlds", DEMO_WORLD);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "world/edits.json"]) {
      if (!fs.existsSync(path.join(world, f))) throw new DeltaEditError("E_NOT_FOUND", `demo: the bundled world is incomplete: ${path.join(world, f)} is missing`, { hint: "rebuild it with `deltaedit world train --out worlds/factworld-v1`" });
    }
    const out = str(args, "out")!;
    if (bool(args, "fresh")) fs.rmSync(out, { recursive: true, force: true });
    const edits = num(args, "edits")!;
    const cps = [50, 100, 200, 300, 400, 500, 750, 1000, 1500, 2000, 2500, 3000].filter((n) => n < edits);
    io.err(`demo: ${edits} sequential edits (batch 1) of the bundled fact world ${path.relative(process.cwd(), world) || world}, methods ${str(args, "methods")}; output in ${out}\n`);
    const facts = path.join(world, "world", "control-facts.jsonl");
    const heldout = path.join(world, "world", "corpus-heldout.txt");
    return invokeBench(
      {
        model: world,
        dataset: path.join(world, "world", "edits.json"),
        kind: "mcf",
        methods: str(args, "methods")!.split(",").map((s) => s.trim()) as never,
        edits,
        batch: 1,
        protocol: "checkpoints",
        checkpoints: [...cps, edits],
        out,
        seed: 0,
        neighborhood: "standard",
        sets: {},
        json: bool(args, "json"),
        ...(fs.existsSync(heldout) ? { heldOut: heldout } : {}),
        ...(fs.existsSync(facts) ? { controlFacts: facts } : {}),
      },
      io,
    );
  },
};
