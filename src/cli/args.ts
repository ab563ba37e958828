/**
 * A small declarative command-line layer: each command declares its options (name, type,
 * description, default), gets `--help` for free, and unknown or misspelled options are
 * errors that suggest the right one.
 */
import { DeltaEditError } from "../errors.js";
import { editDistance } from "../model/params.js";

export type OptType = "string" | "number" | "boolean" | "list";

export interface OptSpec {
  type: OptType;
  description: string;
  default?: string | number | boolean;
  required?: boolean;
  valueName?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptSpec>;
  run(args: ParsedArgs, io: CliIO): Promise<number>;
}

export interface CliIO {
  out(s: string): void; // stdout
  err(s: string): void; // stderr (progress, logs)
}

export type ParsedArgs = Record<string, string | number | boolean | string[] | undefined>;

export function parseArgs(cmd: CommandSpec, argv: readonly string[]): ParsedArgs | "help" {
  const res: ParsedArgs = {};
  for (const [k, o] of Object.entries(cmd.options)) if (o.default !== undefined) res[k] = o.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") return "help";
    if (!a.startsWith("--")) throw new DeltaEditError("E_USAGE", `${cmd.name}: unexpected argument "${a}"`, { hint: `see: deltaedit ${cmd.name} --help` });
    let key = a.slice(2);
    let inline: string | undefined;
    const eq = key.indexOf("=");
    if (eq >= 0) {
      inline = key.slice(eq + 1);
      key = key.slice(0, eq);
    }
    const spec = cmd.options[key];
    if (!spec) {
      const known = Object.keys(cmd.options);
      const best = known.map((k) => [k, editDistance(key, k)] as const).sort((x, y) => x[1] - y[1])[0];
      throw new DeltaEditError("E_USAGE", `${cmd.name}: unknown option --${key}`, { hint: best && best[1] <= 3 ? `did you mean --${best[0]}?` : `see: deltaedit ${cmd.name} --help` });
    }
    if (spec.type === "boolean") {
      res[key] = inline === undefined ? true : inline !== "false" && inline !== "0";
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new DeltaEditError("E_USAGE", `${cmd.name}: option --${key} needs a value`);
    if (spec.type === "number") {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new DeltaEditError("E_USAGE", `${cmd.name}: option --${key} expects a number, got "${v}"`);
      res[key] = n;
    } else if (spec.type === "list") {
      const prev = res[key];
      res[key] = [...(Array.isArray(prev) ? prev : []), v];
    } else res[key] = v;
  }
  for (const [k, o] of Object.entries(cmd.options)) {
    if (o.required && res[k] === undefined) throw new DeltaEditError("E_USAGE", `${cmd.name}: missing required option --${k}`, { hint: `see: deltaedit ${cmd.name} --help` });
  }
  return res;
}

export function helpText(cmd: CommandSpec): string {
  const lines = [`deltaedit ${cmd.name} — ${cmd.summary}`, "", `usage: ${cmd.usage}`, "", "options:"];
  const entries = Object.entries(cmd.options);
  const left = entries.map(([k, o]) => `  --${k}${o.type === "boolean" ? "" : ` ${o.valueName ?? o.type.toUpperCase()}`}`);
  const w = Math.max(...left.map((s) => s.length), 10) + 2;
  entries.forEach(([, o], i) => {
    const def = o.default !== undefined ? ` (default: ${String(o.default)})` : o.required ? " (required)" : "";
    lines.push(left[i]!.padEnd(w) + o.description + def);
  });
  lines.push("  --help".padEnd(w) + "show this help");
  return lines.join("\n");
}

export function str(a: ParsedArgs, k: string): string | undefined {
  const v = a[k];
  return typeof v === "string" ? v : undefined;
}

export function num(a: ParsedArgs, k: string): number | undefined {
  const v = a[k];
  return typeof v === "number" ? v : undefined;
}

export function bool(a: ParsedArgs, k: string): boolean {
  return a[k] === true;
}

/** Parse "1,2,3" into integers, naming the option on error. */
export function intList(s: string, opt: string): number[] {
  const parts = s.split(",").map((x) => x.trim()).filter((x) => x.length > 0);
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n)) throw new DeltaEditError("E_USAGE", `--${opt}: "${p}" is not an integer`);
    return n;
  });
}
