// Builds the legacy addon with node-gyp. Run by `npm install` (the package's install script) and
// by hand with `node build.mjs`.
//
// The addon is a sample: the rest of the monorepo must install, build and test without it. So this
// script never fails. When the build cannot happen (no python3, make or C++ compiler, no Node
// headers, no node-gyp) or fails, it says what is missing, records the reason in
// build/build-status.json (which index.mjs repeats in its "not built" error) and exits 0.
//
// Environment:
//   PROCESS_SANDBOX_SKIP_LEGACY_ADDON=1   skip the build on purpose
//   npm_config_node_gyp                   node-gyp to use (npm sets it for install scripts)
//   npm_config_nodedir                    where Node's headers are (npm passes its `nodedir` config)
//   npm_config_python, PYTHON, CXX, MAKE  as node-gyp reads them
//
// npm hides the output of install scripts that succeed; `npm install --foreground-scripts` shows it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const buildDir = join(here, 'build');
const statusFile = join(buildDir, 'build-status.json');
const addonFile = join(buildDir, 'Release', 'legacy_addon.node');
const requireHere = createRequire(join(here, 'package.json'));

const say = (line = '') => console.log(`[legacy-addon] ${line}`);

function main() {
  rmSync(statusFile, { force: true });
  if (process.env.PROCESS_SANDBOX_SKIP_LEGACY_ADDON === '1') {
    return giveUp('skipped: PROCESS_SANDBOX_SKIP_LEGACY_ADDON=1 is set.', []);
  }

  const checks = [checkPython(), checkMake(), checkCompiler(), checkNodeGyp(), checkAddonApi(), checkHeaders()];
  for (const c of checks) say(`${c.ok ? 'found  ' : c.fatal ? 'MISSING' : 'warning'} ${c.what}: ${c.detail}`);
  const missing = checks.filter((c) => !c.ok && c.fatal);
  if (missing.length > 0) {
    return giveUp(`not built: missing ${missing.map((c) => c.what).join(', ')}.`, checks);
  }

  const nodeGyp = checks[3].path;
  const headers = checks[5];
  const args = [nodeGyp, 'rebuild'];
  // npm passes its `nodedir` config as npm_config_nodedir, which node-gyp reads by itself; outside
  // npm, point node-gyp at the headers found beside this node rather than let it download them.
  if (!process.env.npm_config_nodedir && headers.ok && headers.nodedir) args.push(`--nodedir=${headers.nodedir}`);
  say(`running: ${process.execPath} ${args.join(' ')}`);
  const run = spawnSync(process.execPath, args, { cwd: here, env: process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  process.stdout.write(run.stdout ?? '');
  process.stderr.write(run.stderr ?? '');
  if (run.error || run.status !== 0) {
    const why = run.error ? run.error.message : run.signal ? `signal ${run.signal}` : `exit code ${run.status}`;
    // The first lines that say what went wrong: compiler errors, then node-gyp's own.
    const output = `${run.stdout ?? ''}\n${run.stderr ?? ''}`.split('\n');
    const errors = output.filter((l) => /error|not found|No such file|ERR! (?!stack|System|command|cwd|node -v|node-gyp -v|not ok)/i.test(l) && !/^gyp info/.test(l));
    const summary = errors.slice(0, 4).map((l) => l.trim()).join(' | ');
    return giveUp(`not built: node-gyp failed (${why})${summary ? `: ${summary}` : ''}.`, checks);
  }
  if (!existsSync(addonFile)) {
    return giveUp(`not built: node-gyp succeeded but ${addonFile} is not there.`, checks);
  }

  // Loading the addon has no side effects (its defects only run when called), so check it loads.
  const load = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addonFile)})`], { encoding: 'utf8' });
  if (load.status !== 0) {
    return giveUp(`built, but ${addonFile} does not load: ${(load.stderr || '').trim().split('\n').slice(-3).join(' ')}`, checks);
  }
  say(`built ${addonFile}`);
}

/** Prints why there is no addon, what to install, records it for index.mjs, and exits 0. */
function giveUp(reason, checks) {
  const lines = [
    reason,
    'The legacy addon sample and test/legacy-addon.test.mjs need: python3, make, a C++ compiler (g++ or clang++),',
    "Node's headers (npm's `nodedir` config, <node prefix>/include/node, or a network to download them) and node-gyp.",
    'Nothing else in the monorepo needs it: installing, building and testing the rest goes on without it.',
    'To retry after installing what is missing: node samples/legacy-addon/build.mjs (or npm rebuild @process-sandbox/sample-legacy-addon).',
  ];
  for (const line of lines) say(line);
  try {
    mkdirSync(buildDir, { recursive: true });
    const missing = checks.filter((c) => !c.ok).map((c) => `${c.what}: ${c.detail}`);
    writeFileSync(statusFile, JSON.stringify({ built: false, reason, missing, at: new Date().toISOString() }, null, 2) + '\n');
  } catch (error) {
    say(`(could not write ${statusFile}: ${error.message})`);
  }
  process.exitCode = 0;
}

/** Runs `command --version`; returns its first line, or undefined if it cannot run. */
function version(command, args = ['--version']) {
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: 15_000 });
  if (run.error || run.status !== 0) return undefined;
  return `${command} (${(run.stdout || run.stderr).trim().split('\n')[0]})`;
}

function firstWorking(candidates, args) {
  for (const c of candidates.filter(Boolean)) {
    const found = version(c, args);
    if (found) return found;
  }
  return undefined;
}

function checkPython() {
  const found = firstWorking([process.env.npm_config_python, process.env.PYTHON, 'python3', 'python']);
  return { what: 'python3', ok: !!found, fatal: true, detail: found ?? 'no python3 on PATH (apt-get install python3)' };
}

function checkMake() {
  const found = firstWorking([process.env.MAKE, 'make', 'gmake']);
  return { what: 'make', ok: !!found, fatal: true, detail: found ?? 'no make on PATH (apt-get install make)' };
}

function checkCompiler() {
  const found = firstWorking([process.env.CXX, 'g++', 'c++', 'clang++']);
  return { what: 'a C++ compiler', ok: !!found, fatal: true, detail: found ?? 'no g++, c++ or clang++ on PATH (apt-get install g++)' };
}

function checkNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    candidates.push(requireHere.resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  // npm's own bundled node-gyp: beside npm-cli.js when run by npm, else in node's global modules.
  const npmDirs = [];
  if (process.env.npm_execpath) npmDirs.push(resolve(dirname(process.env.npm_execpath), '..'));
  npmDirs.push(resolve(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm'));
  npmDirs.push(resolve(dirname(process.execPath), 'node_modules', 'npm'));
  for (const dir of npmDirs) {
    try {
      candidates.push(createRequire(join(dir, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
    } catch {}
  }
  const path = candidates.find((p) => p.endsWith('.js') && existsSync(p));
  return { what: 'node-gyp', ok: !!path, fatal: true, path, detail: path ?? "not found (npm bundles it; or npm install -g node-gyp)" };
}

function checkAddonApi() {
  try {
    const path = dirname(requireHere.resolve('node-addon-api/package.json'));
    return { what: 'node-addon-api', ok: true, fatal: true, detail: path };
  } catch {
    return { what: 'node-addon-api', ok: false, fatal: true, detail: 'not installed (it is a dependency of this package: run npm install)' };
  }
}

function checkHeaders() {
  const what = "Node's headers";
  const configured = process.env.npm_config_nodedir;
  if (configured) {
    const ok = existsSync(join(configured, 'include', 'node', 'node_api.h'));
    return { what, ok, fatal: false, detail: ok ? `nodedir ${configured}` : `nodedir ${configured} has no include/node/node_api.h` };
  }
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) {
    return { what, ok: true, fatal: false, nodedir: prefix, detail: `${join(prefix, 'include', 'node')}` };
  }
  const devDir = process.env.npm_config_devdir || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'node-gyp');
  const cached = join(devDir, process.versions.node, 'include', 'node', 'node_api.h');
  if (existsSync(cached)) return { what, ok: true, fatal: false, detail: `node-gyp cache ${dirname(dirname(cached))}` };
  return {
    what,
    ok: false,
    fatal: false,
    detail: `none for node ${process.versions.node} at ${join(prefix, 'include', 'node')} nor in node-gyp's cache; node-gyp will try to download them, which needs a network`,
  };
}

try {
  main();
} catch (error) {
  giveUp(`not built: build.mjs itself failed: ${error?.stack ?? error}`, []);
}
process.exitCode = 0;
