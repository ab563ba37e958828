/**
 * The method registry: an explicit map from a method name to its constructor (no side effects,
 * no self-registration). `createMethod` resolves and validates the hyperparameters.
 */
import { DeltaEditError } from "../../errors.js";
import { AlphaEdit } from "./alphaedit.js";
import { DeltaEdit } from "./deltaedit.js";
import { FineTune } from "./ft.js";
import { Memit } from "./memit.js";
import { METHOD_NAMES, type EditMethod, type MethodName } from "./method.js";
import { Prune } from "./prune.js";
import { Rect } from "./rect.js";
import { Rome } from "./rome.js";

type MethodConstructor = new (overrides: Record<string, unknown>, numLayers: number) => EditMethod;

const METHODS: Readonly<Record<MethodName, MethodConstructor>> = Object.freeze({
  rome: Rome,
  memit: Memit,
  alphaedit: AlphaEdit,
  deltaedit: DeltaEdit,
  ft: FineTune,
  prune: Prune,
  rect: Rect,
});

/** A new method instance for `name` with `overrides` on its gpt2-xl defaults, for a model of `numLayers` blocks. */
export function createMethod(name: MethodName, overrides: Record<string, unknown>, numLayers: number): EditMethod {
  const ctor = Object.prototype.hasOwnProperty.call(METHODS, name) ? METHODS[name] : undefined;
  if (!ctor) throw new DeltaEditError("E_CONFIG", `unknown editing method "${String(name)}"; supported: ${METHOD_NAMES.join(", ")}`, { hint: `choose one of ${METHOD_NAMES.join(", ")}` });
  return new ctor(overrides, numLayers);
}
