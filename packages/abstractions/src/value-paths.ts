/**
 * Saying where in a value the problem is, once the encoder has refused it: `[3][0]`, `.options.onProgress`,
 * `["odd key"]`, `.<map value 0>`. The walks here are bounded (depth and number of nodes) and
 * guarded (a Proxy or a getter met on the way cannot make the explanation itself throw).
 */

/** A position inside a Map, a Set or an Error's own fields: not a key anyone could write. */
export class PathSlot {
  constructor(readonly text: string) {}
}

/** One step of a path: an array index, an object key, or a slot. */
export type PathKey = number | string | PathSlot;

/** Renders a path: `[3][0].name["odd key"].<map value 1>`. */
export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (key instanceof PathSlot) out += `.<${key.text}>`;
    else if (/^[A-Za-z_$][\w$]*$/.test(key)) out += `.${key}`;
    else out += `[${JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key)}]`;
  }
  return out;
}

/** `label` for the root itself, else `label: path` (`add() argument 0: [3][0]`). */
export function describePath(label: string, path: readonly PathKey[]): string {
  return path.length === 0 ? label : `${label}: ${formatPath(path).replace(/^\./, '')}`;
}

/** How many nodes an explanation may visit before giving up on naming a path. */
const VISIT_BUDGET = 1_000_000;

function* children(value: object): Generator<[PathKey, unknown]> {
  if (value instanceof Map) {
    let i = 0;
    for (const [k, v] of value) {
      yield [new PathSlot(`map key ${i}`), k];
      yield [new PathSlot(`map value ${i}`), v];
      i++;
    }
    return;
  }
  if (value instanceof Set) {
    let i = 0;
    for (const v of value) yield [new PathSlot(`set item ${i++}`), v];
    return;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) yield [i, value[i]];
    return;
  }
  const isError = value instanceof Error;
  for (const key of Object.keys(value)) {
    if (isError && (key === 'cause' || key === 'errors' || key === 'name' || key === 'message' || key === 'stack')) continue;
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (isError && descriptor !== undefined && !('value' in descriptor)) continue; // errors' accessors are not sent
    yield [key, (value as Record<string, unknown>)[key]];
  }
  if (isError && 'cause' in value) yield [new PathSlot('cause'), value.cause];
  if (value instanceof AggregateError && Array.isArray(value.errors)) {
    for (let i = 0; i < value.errors.length; i++) yield [new PathSlot(`errors ${i}`), value.errors[i]];
  }
}

/**
 * The path of the first reference back to an ancestor, looking no deeper than `maxDepth` levels
 * (a cycle the encoder ran into shows within them). An Error's cause that loops is not a cycle
 * here: the codec cuts it with a marker.
 */
export function findCycle(root: unknown, maxDepth: number): PathKey[] | undefined {
  const onPath = new Set<object>();
  const path: PathKey[] = [];
  let visits = 0;
  const walk = (value: unknown, key: PathKey | undefined): boolean => {
    if (typeof value !== 'object' || value === null) return false;
    // A cause (or AggregateError member) that loops back to an error is cut by the codec, not refused.
    if (onPath.has(value)) return !(key instanceof PathSlot && (key.text === 'cause' || key.text.startsWith('errors ')) && value instanceof Error);
    if (onPath.size >= maxDepth || ++visits > VISIT_BUDGET) return false;
    onPath.add(value);
    for (const [k, child] of children(value)) {
      path.push(k);
      if (walk(child, k)) return true;
      path.pop();
    }
    onPath.delete(value);
    return false;
  };
  try {
    return walk(root, undefined) ? path : undefined;
  } catch {
    return undefined;
  }
}

/** The path of the first value for which `refuse` gives a reason, with that reason. */
export function findRefused(root: unknown, maxDepth: number, refuse: (value: unknown) => string | undefined): { path: PathKey[]; reason: string } | undefined {
  const seen = new Set<object>();
  const path: PathKey[] = [];
  let visits = 0;
  const walk = (value: unknown, depth: number): string | undefined => {
    const reason = refuse(value);
    if (reason !== undefined) return reason;
    if (typeof value !== 'object' || value === null || seen.has(value) || depth >= maxDepth || ++visits > VISIT_BUDGET) return undefined;
    seen.add(value);
    for (const [k, child] of children(value)) {
      path.push(k);
      const found = walk(child, depth + 1);
      if (found !== undefined) return found;
      path.pop();
    }
    return undefined;
  };
  try {
    const reason = walk(root, 0);
    return reason === undefined ? undefined : { path, reason };
  } catch {
    return undefined;
  }
}
