/**
 * A custom `execPath` (say, another node binary that matches a legacy addon's ABI) is checked once,
 * before any worker is spawned: it must run and say it is Node.js, recent enough for the worker
 * host. A wrong binary is a ConfigurationError naming it, not a start timeout later.
 */
import { execFileSync } from 'node:child_process';
import { ConfigurationError } from '@process-sandbox/abstractions';

/** The oldest Node.js major the worker host runs on. */
const MIN_MAJOR = 18;
const checked = new Map<string, string>();

/** Runs `execPath --version`; returns the version, throws ConfigurationError('execPath'). */
export function checkRuntime(execPath: string): string {
  const known = checked.get(execPath);
  if (known) return known;
  let output: string;
  try {
    output = execFileSync(execPath, ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true }).trim();
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string; status?: number | null; signal?: string | null };
    const why = e.code === 'ETIMEDOUT' ? 'it did not answer within 10 s'
      : e.code ? `${e.code}: ${e.message}`
      : `it exited with ${e.signal ? `signal ${e.signal}` : `code ${e.status}`}${e.stderr ? ` (${String(e.stderr).trim().slice(0, 200)})` : ''}`;
    throw new ConfigurationError('execPath', `${execPath} does not run as a Node.js binary ('${execPath} --version' failed: ${why})`);
  }
  const match = /^v(\d+)\.\d+\.\d+/.exec(output);
  if (!match) throw new ConfigurationError('execPath', `${execPath} is not a Node.js binary: '--version' printed '${output.slice(0, 100)}'`);
  if (Number(match[1]) < MIN_MAJOR) throw new ConfigurationError('execPath', `${execPath} is Node.js ${output}; workers need Node.js ${MIN_MAJOR} or later`);
  checked.set(execPath, output);
  return output;
}
