/**
 * The deltaedit command line. Commands are declared in a table and imported lazily.
 * A DeltaEditError prints its message and hint (exit 2 for usage errors, 1 otherwise);
 * anything else is a bug and prints its stack.
 */
import { DeltaEditError } from "../errors.js";
import { helpText, parseArgs, type CliIO, type CommandSpec } from "./args.js";
import { packageVersion } from "./version.js";

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandSpec>; sub?: Record<string, () => Promise<CommandSpec>> }> = {
  tokenize: { summary: "print the token ids of a text", load: async () => (await import("./commands/tokenize.js")).command },
  logits: { summary: "print next-token logits for every input position (teacher forcing)", load: async () => (await import("./commands/logits.js")).command },
  generate: { summary: "generate text (greedy or seeded top-k) with a KV cache", load: async () => (await import("./commands/generate.js")).command },
  stats: { summary: "covariance (second-moment) statistics of the MLP keys over a corpus", load: async () => (await import("./commands/stats.js")).command },
  edit: { summary: "apply a stream of edits sequentially in a durable, resumable session", load: async () => (await import("./commands/edit.js")).command },
  undo: { summary: "subtract one recorded edit from a session", load: async () => (await import("./commands/undo.js")).command },
  export: { summary: "export a session's edited model (HF checkpoint, PEFT LoRA adapter, GGUF model or GGUF LoRA adapter for llama.cpp)", load: async () => (await import("./commands/export.js")).command },
  demo: { summary: "compare MEMIT, AlphaEdit and DeltaEdit on the bundled fact world (no arguments needed)", load: async () => (await import("./commands/demo.js")).command },
  world: { summary: "world train: build and train the bundled fact world; world info: its measured quality", load: async () => (await import("./commands/world.js")).trainCommand, sub: { train: async () => (await import("./commands/world.js")).trainCommand, info: async () => (await import("./commands/world.js")).infoCommand } },
  bench: { summary: "run methods on one edit stream and score them (table, results.json, HTML report)", load: async () => (await import("./commands/bench.js")).command },
  paper: { summary: "reproduce the DeltaEdit paper's experiments (table, noise, influence/activation, representation shift, β sweep, case study)", load: async () => (await import("./commands/paper.js")).command },
  glue: { summary: "general-ability tasks (SST-2, MRPC, CoLA, RTE, MMLU, NLI) on a model or a session", load: async () => (await import("./commands/glue.js")).command },
  trace: { summary: "causal tracing (ROME): where facts are recalled; AIE heat maps, edit-layer suggestion", load: async () => (await import("./commands/trace.js")).command },
};

export { packageVersion };

function mainHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length)) + 2;
  return [
    "deltaedit — sequential knowledge editing of LLMs (DeltaEdit, AlphaEdit, MEMIT, ROME, …) on CPU",
    "",
    "usage: deltaedit <command> [options]      deltaedit <command> --help",
    "",
    "commands:",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}${c.summary}`),
    "",
    "  --version    print the version, the BLAS library and the kernel family in use",
  ].join("\n");
}

export async function main(argv: string[], io: CliIO = defaultIO()): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      io.out(mainHelp() + "\n");
      return name === undefined ? 2 : 0;
    }
    if (name === "--version" || name === "-v") {
      const ops = await import("../kernels/ops.js");
      const info = ops.blasInfo();
      io.out(`deltaedit ${packageVersion()}\nnode ${process.version}\nblas: ${info.library} (${info.config})\nkernel: ${info.coreName} (OPENBLAS_CORETYPE ${info.coreTypeSource === "env" ? "from the environment" : info.coreTypeSource === "auto" ? "chosen from CPU features" : "left to OpenBLAS"})\nthreads: ${info.threads} (BLAS), ${info.kernelThreads} (fused kernels)\n`);
      return 0;
    }
    const entry = COMMANDS[name];
    if (!entry) {
      io.err(`deltaedit: unknown command "${name}"\n\n${mainHelp()}\n`);
      return 2;
    }
    let argv2 = rest;
    let cmd: CommandSpec;
    if (entry.sub) {
      const subName = rest[0];
      const load = subName !== undefined ? entry.sub[subName] : undefined;
      if (!load) {
        io.err(`deltaedit ${name}: expected a subcommand: ${Object.keys(entry.sub).join(", ")}\n`);
        return 2;
      }
      cmd = await load();
      argv2 = rest.slice(1);
    } else cmd = await entry.load();
    const args = parseArgs(cmd, argv2);
    if (args === "help") {
      io.out(helpText(cmd) + "\n");
      return 0;
    }
    return await cmd.run(args, io);
  } catch (e) {
    if (e instanceof DeltaEditError) {
      io.err(`deltaedit: error: ${e.message}\n`);
      if (e.hint) io.err(`hint: ${e.hint}\n`);
      return e.code === "E_USAGE" ? 2 : 1;
    }
    io.err(`deltaedit: internal error (a bug — please report it):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  }
}

function defaultIO(): CliIO {
  return { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };
}
