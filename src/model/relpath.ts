/**
 * File names that come from outside (a shard index's weight_map, a Hub server's answers) are used
 * as paths below a directory we own. `unsafeRelativePathReason` says why a name could escape that
 * directory or alias another file, or returns null for a safe name: a non-empty relative path of
 * `/`-separated components, none of them empty, "." or "..", with no backslash, no NUL and no
 * drive letter.
 */
export function unsafeRelativePathReason(name: unknown): string | null {
  if (typeof name !== "string") return "not a string";
  if (name.length === 0) return "empty";
  if (name.includes("\0")) return "contains a NUL character";
  if (name.includes("\\")) return "contains a backslash";
  if (name.startsWith("/")) return "is an absolute path";
  if (/^[A-Za-z]:/.test(name)) return "starts with a drive letter";
  for (const part of name.split("/")) {
    if (part === "") return "has an empty path component";
    if (part === "." || part === "..") return `has a "${part}" path component`;
  }
  return null;
}
