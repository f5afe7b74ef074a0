import { classCodeOf } from '@process-sandbox/abstractions';

/**
 * The `outcome` of a failed call: its error class's static code, looked up through the prototype
 * chain (an own `constructor` property cannot shadow it); a short `name` for an error that is not
 * the library's. Never throws, and its values are few (they label metrics).
 */
export function outcomeOf(error: Error): string {
  const code = classCodeOf(error);
  if (code !== undefined) return code;
  try {
    const name: unknown = error.name;
    return typeof name === 'string' && name.length <= 64 ? name : 'Error';
  } catch {
    return 'Error';
  }
}
