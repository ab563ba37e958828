/**
 * Module resolve hook for the examples test: the package name "deltaedit" resolves to the compiled
 * sources in dist-test/src/index.js (the examples import only from the package entry; a user's
 * program resolves it to dist/index.js through package.json "exports").
 */
export async function resolve(specifier: string, context: unknown, next: (s: string, c: unknown) => Promise<unknown>): Promise<unknown> {
  if (specifier === "deltaedit") return { url: new URL("../../src/index.js", import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
