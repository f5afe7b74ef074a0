// The packages as a user gets them: `npm pack` of each, installed into a fresh project outside the
// repository (the npm registry, through npm's cache, provides their dependencies and the tools).
// That project is the one docs/getting-started.md builds, block by block; then: TypeScript consumers
// under four module resolutions without skipLibCheck, ESM and CommonJS consumers, attw on every
// tarball, installs with --omit=optional and --legacy-peer-deps, and every code block of the
// getting-started guide and the recipes, run.
//
// Slow (npm installs): tagged @slow; about a minute on an idle machine with a warm npm cache.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import * as fixtures from './consumer/fixtures.mjs';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = ['abstractions', 'worker', 'core'];
/** npm may use its cache; nothing here needs an audit, funding notes or update checks. */
const npmEnv = { ...process.env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' };

async function sh(command, cwd, { env = npmEnv, timeoutMs = 180_000 } = {}) {
  try {
    return await run('bash', ['-euo', 'pipefail', '-c', command], { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    throw new Error(`\`${command}\` in ${cwd} failed (${error.code ?? error.signal}):\n${error.stdout}\n${error.stderr}`);
  }
}

async function node(file, cwd) {
  return run(process.execPath, [file], { cwd, env: process.env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }).catch((error) => {
    throw new Error(`node ${file} failed (exit ${error.code ?? error.signal}):\n${error.stdout}\n${error.stderr}`);
  });
}

function write(file, text) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

/** The fenced blocks of a markdown file, each with the doc-test comment right above it, parsed. */
function docBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('```')) continue;
    let end = i + 1;
    while (!lines[end].startsWith('```')) end++;
    let above = i - 1;
    while (above >= 0 && lines[above].trim() === '') above--;
    const marker = /^<!-- doc-test: (.*) -->$/.exec(lines[above]?.trim() ?? '')?.[1];
    blocks.push({ line: i + 1, lang: lines[i].slice(3).trim(), code: lines.slice(i + 1, end).join('\n') + '\n', ...(marker ? parseMarker(marker) : { kind: undefined }) });
    i = end;
  }
  return blocks;
}

/** `kind [path] [key=value …] [wrap] [ (comment)]`; `expect=` and `rejects=` take the rest of the line. */
function parseMarker(text) {
  const [kind, ...words] = text.split(' ');
  let rest = words.join(' ');
  const marker = { kind };
  const tail = /\b(expect|rejects)=(.*)$/.exec(rest);
  if (tail) {
    marker[tail[1]] = tail[2];
    rest = rest.slice(0, tail.index);
  }
  for (const token of rest.replace(/\s\(.*\)\s*$/, '').split(/\s+/).filter(Boolean)) {
    const eq = token.indexOf('=');
    if (eq < 0) marker[token === 'wrap' ? 'wrap' : 'path'] = token === 'wrap' ? true : token;
    else marker[token.slice(0, eq)] = token.slice(eq + 1);
  }
  return marker;
}

/** A fragment as a module: its context first, then the block, then the pools it made disposed. */
function fragmentModule(block, header) {
  const prelude = (block.with ?? '').split(',').filter(Boolean).map((name) => {
    if (!fixtures.PRELUDE[name]) throw new Error(`line ${block.line}: with=${name} is not a known context`);
    return fixtures.PRELUDE[name];
  });
  let code = block.code;
  if (block.replace) {
    const [from, to] = block.replace.split(':');
    code = code.replaceAll(from, to);
  }
  if (block.wrap) code = `async function __fragment(): Promise<unknown> {\n${code}}\nawait __fragment();\n`;
  return [
    "import * as __ps from '@process-sandbox/core';",
    header,
    ...prelude,
    code,
    block.then ? `${block.then};` : '',
    'await __ps.ProcessProxy.disposeAll();',
    '',
  ].join('\n');
}

describe('consumer: the packed packages in a fresh project @slow', function () {
  this.timeout(300_000);
  let root;
  let tarballs;
  let packed;
  let project;
  const deferred = []; // TypeScript doc blocks: compiled together, then run in order

  before(async function () {
    const unbuilt = PACKAGES.filter((p) => !existsSync(join(repo, 'packages', p, 'dist/index.js')));
    if (unbuilt.length > 0) throw new Error(`packages/{${unbuilt.join(',')}}/dist is missing: run npm run build first (npm test does)`);
    root = mkdtempSync(join(tmpdir(), 'process-sandbox-consumer-'));
    const { stdout } = await sh(`npm pack ${PACKAGES.map((p) => `--workspace packages/${p}`).join(' ')} --pack-destination ${JSON.stringify(root)} --json`, repo);
    packed = JSON.parse(stdout);
    tarballs = packed.map((p) => join(root, p.filename));
  });

  after(() => {
    if (root && !process.env.KEEP_CONSUMER) rmSync(root, { recursive: true, force: true });
  });

  it('every tarball has LICENSE, README and CHANGELOG, and every source map its sources', () => {
    expect(packed.map((p) => p.name).sort()).to.deep.equal(PACKAGES.map((p) => `@process-sandbox/${p}`).sort());
    for (const pkg of packed) {
      const files = new Set(pkg.files.map((f) => f.path));
      for (const required of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json']) expect(files, `${pkg.name} ships ${required}`).to.include(required);
      const maps = [...files].filter((f) => f.endsWith('.map'));
      expect(maps.length, `${pkg.name} ships source maps`).to.be.above(0);
      const dir = join(repo, 'packages', pkg.name.split('/')[1]);
      for (const map of maps) {
        const { sources } = JSON.parse(readFileSync(join(dir, map), 'utf8'));
        for (const source of sources) expect(files, `${pkg.name}: ${map} points at ${source}`).to.include(join(dirname(map), source));
      }
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      expect(manifest.license).to.equal('MIT');
      for (const field of ['repository', 'homepage', 'bugs', 'keywords']) expect(manifest, `${pkg.name}.${field}`).to.have.property(field);
    }
  });

  it('the worker tarball ships the bundled runtime that core spawns (dist/bundle), built, not its sources', () => {
    const files = new Set(packed.find((p) => p.name === '@process-sandbox/worker').files.map((f) => f.path));
    for (const path of ['dist/bundle/bin.js', 'dist/bundle/parent-watchdog-thread.cjs']) expect(files, `the worker ships ${path}`).to.include(path);
    expect([...files].filter((f) => f.startsWith('scripts/')), 'the bundler script stays in the repository').to.deep.equal([]);
  });

  it('attw finds no problem in any tarball (ESM-only: require() of them needs Node ≥ 20.19)', async () => {
    const attw = join(repo, 'node_modules/.bin/attw');
    // cjs-resolves-to-esm: the packages are ES modules only, which Node 20.19+ require()s.
    const check = (tarball) =>
      sh(`${attw} ${JSON.stringify(tarball)} --ignore-rules cjs-resolves-to-esm --format ascii --no-color`, root).catch((error) => {
        throw new Error(`attw reports problems for ${tarball}:\n${error.message}`);
      });
    for (const { stdout } of await Promise.all(tarballs.map(check))) expect(stdout).to.not.match(/💀|❌|🥴|🎭/u);
  });

  it('docs/getting-started.md: every block, in order, from an empty directory', async () => {
    const blocks = docBlocks(readFileSync(join(repo, 'docs/getting-started.md'), 'utf8'));
    const unmarked = blocks.filter((b) => !b.kind).map((b) => `line ${b.line}`);
    expect(unmarked, 'code blocks without a doc-test comment').to.deep.equal([]);
    for (const block of blocks) await runDocBlock(block, root, '');
    project = join(root, 'calculator');
    const installed = readdirSync(join(project, 'node_modules/@process-sandbox')).sort();
    expect(installed, 'installing @process-sandbox/core brings the other two').to.deep.equal(['abstractions', 'core', 'worker']);
    for (const absent of ['typed-emitter', 'rxjs', '@opentelemetry/api']) expect(existsSync(join(project, 'node_modules', absent)), `${absent} is not installed`).to.equal(false);
    await runDeferred(project);
  });

  it('docs/recipes.md: every block runs (or, where marked, compiles) in the same project', async function () {
    if (!project) this.skip();
    const blocks = docBlocks(readFileSync(join(repo, 'docs/recipes.md'), 'utf8'));
    const unmarked = blocks.filter((b) => !b.kind).map((b) => `line ${b.line}`);
    expect(unmarked, 'code blocks without a doc-test comment').to.deep.equal([]);
    // pino is what the logging recipe uses; the reader installs it like this.
    await sh('npm install pino', project);
    write(join(project, 'src/recipe-types.ts'), fixtures.RECIPE_TYPES);
    for (const block of blocks) await runDocBlock(block, project, fixtures.RECIPE_HEADER, 'src/');
    await runDeferred(project, () => {
      for (const name of fixtures.RECIPE_IMPL_NAMES) write(join(project, 'dist', name), fixtures.RECIPE_IMPL);
    });
  });

  it('TypeScript consumers compile under nodenext, node16, bundler and node10 without skipLibCheck; the nodenext build (ESM and .cts) runs', async function () {
    if (!project) this.skip();
    const dir = join(project, 'consumer');
    write(join(dir, 'impl.mjs'), fixtures.IMPL);
    write(join(dir, 'ts/main.ts'), fixtures.TS_CONSUMER);
    write(join(dir, 'ts/cjs.cts'), fixtures.TS_CJS_CONSUMER);
    const tsc = join(repo, 'node_modules/typescript/bin/tsc'); // the repository's TypeScript; the resolution is the consumer's
    const failures = [];
    const compile = (resolution) => {
      write(join(dir, `ts/tsconfig.${resolution}.json`), fixtures.tsconfig(resolution));
      return run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], { cwd: join(dir, 'ts'), timeout: 240_000 }).catch((error) => failures.push(`${resolution}:\n${error.stdout}${error.stderr}`));
    };
    await Promise.all(Object.keys(fixtures.RESOLUTIONS).map(compile));
    expect(failures.join('\n')).to.equal('');
    const { stdout } = await node('ts/out/main.js', dir);
    expect(JSON.parse(stdout)).to.deep.equal({ sum: 3, text: 'abab', count: 42, echoed: { n: 7 }, remote: 'TypeError E_CONSUMER', refused: 'minPoolSize', typeChecks: [true, true, true, true, true, true, true, true] });
    expect(JSON.parse((await node('ts/out/cjs.cjs', dir)).stdout)).to.deep.equal({ sum: 42 });
  });

  it('an ESM consumer and a CommonJS require() consumer run a call; metrics: true without @opentelemetry/api is a ConfigurationError', async function () {
    if (!project) this.skip();
    const dir = join(project, 'consumer');
    write(join(dir, 'impl.mjs'), fixtures.IMPL);
    write(join(dir, 'esm.mjs'), fixtures.ESM_CONSUMER);
    write(join(dir, 'cjs.cjs'), fixtures.CJS_CONSUMER);
    const esm = JSON.parse((await node('esm.mjs', dir)).stdout);
    expect(esm.sum).to.equal(3);
    expect(esm.described).to.match(/^ProcessProxy \{[\s\S]*export: 'Api'[\s\S]*state: 'open'/);
    expect(esm.string).to.equal(`[ProcessProxy Api of ${join(dir, 'impl.mjs')}]`);
    expect(esm.tag).to.equal('[object ProcessProxy]');
    expect(esm.metrics).to.match(/'metrics'.*'@opentelemetry\/api' is not installed/);
    expect(JSON.parse((await node('cjs.cjs', dir)).stdout)).to.deep.equal({ sum: 5 });
  });

  for (const flag of ['--omit=optional', '--legacy-peer-deps']) {
    it(`npm install ${flag} of the tarballs gives a working install`, async () => {
      const dir = join(root, `install${flag.replace(/[^a-z]/g, '-')}`);
      write(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      await sh(`npm install ${flag} ${tarballs.map((t) => JSON.stringify(t)).join(' ')}`, dir);
      if (flag === '--omit=optional') expect(existsSync(join(dir, 'node_modules/koffi')), 'koffi is left out').to.equal(false);
      expect(existsSync(join(dir, 'node_modules/@opentelemetry/api'))).to.equal(false);
      write(join(dir, 'impl.mjs'), fixtures.IMPL);
      write(join(dir, 'esm.mjs'), fixtures.ESM_CONSUMER);
      expect(JSON.parse((await node('esm.mjs', dir)).stdout).sum).to.equal(3);
    });
  }

  /** Runs or writes one doc block; TypeScript to run is written now and run by runDeferred. */
  async function runDocBlock(block, base, header, fragmentDir = '') {
    const where = `line ${block.line} (${block.kind} ${block.path ?? ''})`;
    const path = block.path && join(base, fragmentDir, block.path);
    switch (block.kind) {
      case 'shell': {
        // `npm install @process-sandbox/core` installs the packed tarballs instead of the registry's.
        const command = block.code.replace(/npm install @process-sandbox\/core\b/g, `npm install ${tarballs.map((t) => JSON.stringify(t)).join(' ')}`);
        const { stdout } = await sh(command, join(base, block.cwd ?? ''));
        if (block.expect) expect(stdout, where).to.include(block.expect);
        return;
      }
      case 'file':
        return write(path, block.code);
      case 'run':
      case 'fragment':
      case 'compile': {
        const code = block.kind === 'fragment' || block.kind === 'compile' ? fragmentModule(block, header) : block.code;
        write(path, code);
        if (block.kind === 'compile') return;
        if (path.endsWith('.ts')) deferred.push({ block, path, where });
        else return checkRun(block, await node(path, dirname(path)).catch((error) => ({ failed: error })), where);
        return;
      }
      default:
        throw new Error(`${where}: unknown doc-test kind '${block.kind}'`);
    }
  }

  /** Compiles the project once, then runs each deferred TypeScript block from dist/. */
  async function runDeferred(dir, beforeRuns) {
    await sh('npx tsc', dir);
    beforeRuns?.();
    for (const { block, path, where } of deferred.splice(0)) {
      const compiled = join(dir, 'dist', path.slice(join(dir, 'src').length + 1).replace(/\.ts$/, '.js'));
      checkRun(block, await node(compiled, dir).catch((error) => ({ failed: error })), where);
    }
  }

  function checkRun(block, result, where) {
    if (block.rejects) {
      expect(result.failed, `${where} should fail with: ${block.rejects}`).to.be.an('error');
      expect(result.failed.message, where).to.include(block.rejects);
      return;
    }
    if (result.failed) throw new Error(`${where}: ${result.failed.message}`);
    if (block.expect) expect(result.stdout, where).to.include(block.expect);
  }
});
