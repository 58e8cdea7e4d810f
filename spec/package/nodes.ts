// Node 24 and 22 for specs that run on both LTS lines: `.ci/node.mjs` (which npm test runs through) provides them.

/** The LTS lines the package is checked on. */
export const NODE_MAJORS = [24, 22] as const;

/**
 * The path of a Node binary of `major`, from `$NODE_<major>` (set by `.ci/node.mjs`, which installs them).
 * @example const node24 = nodeBinary(24); execFile(node24, ['app.mjs']);
 */
export function nodeBinary(major: (typeof NODE_MAJORS)[number]): string {
  const path = process.env[`NODE_${major}`];
  if (!path) throw new Error(`NODE_${major} is not set — run the specs through npm test (.ci/node.mjs provides it)`);
  return path;
}
