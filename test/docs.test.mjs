// The documentation cannot drift from the code. docs/configuration.md must list exactly the options
// the code knows (its interfaces and what its validators accept), with the same types and, where the
// code computes one, the same defaults; docs/errors.md every error class with its code and fields;
// docs/protocol.md every message kind with its fields, every failure reason, the version and the
// Hello cap. Relative links between the documents must resolve.
//
// The real option list comes from OPTION_NAMES (the set resolveOptions accepts) and the defaults from
// resolveOptions() itself, imported from the built packages/core/dist. The interfaces are read from
// the TypeScript sources with the compiler's parser. Nested option lists come from the validators'
// own "known are …" messages. No worker process is started.
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import * as core from '@process-sandbox/core';
import { FailureReason, MAX_HELLO_BYTES, MessageKind, PROTOCOL_VERSION } from '@process-sandbox/abstractions';

const root = new URL('../', import.meta.url);
const read = (path) => readFileSync(new URL(path, root), 'utf8');
const optionsModule = await import(new URL('packages/core/dist/options.js', root).href);
const { resolveOptions, reloadOptions } = optionsModule;
const { silentLogger } = await import(new URL('packages/core/dist/logger.js', root).href);

/** Any absolute path: resolveOptions checks the form of workerModule, not that the file exists. */
const WORKER_MODULE = fileURLToPath(new URL('test/fixtures/torture.mjs', root));
const COLUMNS = ['Option', 'Type', 'Default', 'Unit', 'Effect', 'ConfigurationError'];

// ─── reading the sources ─────────────────────────────────────────────────────

const sourceFiles = new Map();
function sourceFile(path) {
  if (!sourceFiles.has(path)) sourceFiles.set(path, ts.createSourceFile(path, read(path), ts.ScriptTarget.Latest, true));
  return sourceFiles.get(path);
}

function findNode(path, predicate, what) {
  const sf = sourceFile(path);
  let found;
  const visit = (node) => {
    if (found) return;
    if (predicate(node)) found = node;
    else ts.forEachChild(node, visit);
  };
  visit(sf);
  if (!found) throw new Error(`${what} not found in ${path}`);
  return found;
}

/** The properties of `interface name` in `path`, with their types as written. */
function interfaceMembers(path, name) {
  const node = findNode(path, (n) => ts.isInterfaceDeclaration(n) && n.name.text === name, `interface ${name}`);
  const sf = sourceFile(path);
  return node.members.filter(ts.isPropertySignature).map((m) => ({ name: m.name.getText(sf), type: m.type.getText(sf).replace(/\s+/g, ' ') }));
}

/** The labels of the tuple type `type name = [label: …, …]` in `path`. */
function tupleLabels(path, name) {
  const node = findNode(path, (n) => ts.isTypeAliasDeclaration(n) && n.name.text === name, `type ${name}`);
  if (!ts.isTupleTypeNode(node.type)) throw new Error(`type ${name} is not a tuple`);
  return node.type.elements.map((e) => (ts.isNamedTupleMember(e) ? e.name.text : '?'));
}

/** Fields a class declares: constructor parameter properties and instance properties. */
function classFields(path, name) {
  const node = findNode(path, (n) => ts.isClassDeclaration(n) && n.name?.text === name, `class ${name}`);
  const fields = [];
  const hasModifier = (m, kind) => (ts.getModifiers(m) ?? []).some((x) => x.kind === kind);
  for (const member of node.members) {
    if (ts.isPropertyDeclaration(member) && !hasModifier(member, ts.SyntaxKind.StaticKeyword) && !hasModifier(member, ts.SyntaxKind.OverrideKeyword)) {
      fields.push(member.name.getText(sourceFile(path)));
    }
    if (ts.isConstructorDeclaration(member)) {
      for (const p of member.parameters) if ((ts.getModifiers(p) ?? []).length > 0) fields.push(p.name.getText(sourceFile(path)));
    }
  }
  return fields;
}

/** The list after "known … are" in the ConfigurationError that `fn` throws. */
function knownFromError(fn, pattern) {
  try {
    fn();
  } catch (error) {
    const match = pattern.exec(error.message);
    if (!match) throw new Error(`unexpected message: ${error.message}`);
    return match[1].split(/, | and /).map((s) => s.trim());
  }
  throw new Error('expected a ConfigurationError');
}

// ─── reading the markdown ────────────────────────────────────────────────────

const cells = (line) => line.trim().replace(/^\|/, '').replace(/\|$/, '').split(/(?<!\\)\|/).map((c) => c.trim());
const firstCode = (cell) => /`([^`]+)`/.exec(cell)?.[1]?.replaceAll('\\|', '|');

/** The table that follows each `<!-- <kind>: <name> -->` marker, rows as arrays of cells (header first). */
function markedTables(markdown, kind) {
  const tables = new Map();
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const marker = new RegExp(`^<!-- ${kind}: (\\w+) -->$`).exec(lines[i].trim());
    if (!marker) continue;
    let j = i + 1;
    while (j < lines.length && lines[j].trim() === '') j++;
    const rows = [];
    for (; j < lines.length && lines[j].trim().startsWith('|'); j++) rows.push(cells(lines[j]));
    if (rows.length < 2) throw new Error(`no table after the marker '${lines[i].trim()}'`);
    const table = tables.get(marker[1]) ?? { header: rows[0], rows: [] };
    if (rows[0].join('|') !== table.header.join('|')) throw new Error(`tables marked '${marker[1]}' differ in their columns`);
    table.rows.push(...rows.slice(2));
    tables.set(marker[1], table);
  }
  return tables;
}

/** Sections of a markdown file by heading text, for headings of `level` (`##`, `###`); deeper headings stay inside. */
function sections(markdown, level) {
  const out = new Map();
  let current;
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^(#{1,6}) (.+)$/.exec(line);
    if (heading && heading[1].length === level.length) out.set((current = heading[2].trim()), []);
    else if (heading && heading[1].length < level.length) current = undefined;
    else if (current !== undefined) out.get(current).push(line);
  }
  return new Map([...out].map(([k, v]) => [k, v.join('\n')]));
}

const differences = (code, doc) => ({
  missingFromDoc: code.filter((n) => !doc.includes(n)),
  missingFromCode: doc.filter((n) => !code.includes(n)),
});

// ─── configuration.md ────────────────────────────────────────────────────────

/** The options resolveOptions accepts, as its own "unknown option" error lists them. */
const ACCEPTED_OPTIONS = knownFromError(() => resolveOptions({ workerModule: WORKER_MODULE, zz: 1 }), /known options are (.+)$/);
/** The same set, exported for this test (packages/core/src/options.ts); the error's list if not. */
const OPTION_NAMES = optionsModule.OPTION_NAMES ?? ACCEPTED_OPTIONS;

const configuration = read('docs/configuration.md');
const tables = markedTables(configuration, 'options');

/** Every documented group: where its interface is, and how the code lists the names it accepts. */
const GROUPS = {
  ProcessProxyOptions: { source: ['packages/core/src/options.ts', 'ProcessProxyOptions'], prefix: '', accepted: () => [...OPTION_NAMES] },
  retry: {
    source: ['packages/core/src/options.ts', 'RetryOptions'],
    prefix: 'retry.',
    accepted: () => knownFromError(() => resolveOptions({ workerModule: WORKER_MODULE, retry: { methods: ['m'], zz: 1 } }), /known are (.+)$/),
  },
  limits: {
    source: ['packages/core/src/resource-limits.ts', 'ResourceLimits'],
    prefix: 'limits.',
    accepted: () => knownFromError(() => resolveOptions({ workerModule: WORKER_MODULE, limits: { zz: 1 } }), /known limits are (.+)$/),
  },
  cgroup: {
    source: ['packages/core/src/cgroup.ts', 'CgroupLimits'],
    prefix: 'cgroup.',
    accepted: () => knownFromError(() => resolveOptions({ workerModule: WORKER_MODULE, cgroup: { zz: 1 } }), /known keys are (.+)$/),
  },
  wasm: {
    source: ['packages/core/src/wasm-options.ts', 'WasmOptions'],
    prefix: 'wasm.',
    accepted: () => knownFromError(() => resolveOptions({ workerModule: WORKER_MODULE, wasm: { zz: 1 } }), /known are (.+)$/),
  },
  CallOptions: {
    source: ['packages/core/src/call.ts', 'CallOptions'],
    prefix: '',
    // A pool with minPoolSize 0 starts no process; with() validates before anything else.
    accepted: async () => {
      const proxy = await core.ProcessProxy.create({ workerModule: WORKER_MODULE, minPoolSize: 0, healthIntervalMs: 0 });
      try {
        return knownFromError(() => core.ProcessProxy.with(proxy, { zz: 1 }), /known are (.+)$/);
      } finally {
        await core.ProcessProxy.poolOf(proxy).dispose();
      }
    },
  },
  LeaseOptions: { source: ['packages/core/src/pool.ts', 'LeaseOptions'], prefix: '' },
  DisposeOptions: { source: ['packages/core/src/pool.ts', 'DisposeOptions'], prefix: '' },
  ReloadOptions: {
    source: ['packages/core/src/options.ts', 'ReloadOptions'],
    prefix: '',
    accepted: () => knownFromError(() => reloadOptions(resolveOptions({ workerModule: WORKER_MODULE }), { zz: 1 }), /can change (.+) only$/),
  },
};

/** Documented defaults that are expressions rather than literals. */
const SYMBOLS = {
  'os.availableParallelism()': () => Math.max(availableParallelism(), 1),
  'process.execPath': () => process.execPath,
  'process.env': () => process.env,
  silentLogger: () => silentLogger,
};

function evaluate(text) {
  if (Object.hasOwn(SYMBOLS, text)) return SYMBOLS[text]();
  if (text === 'undefined') return undefined;
  if (text === 'Infinity') return Infinity;
  if (text === 'true' || text === 'false') return text === 'true';
  if (text === '[]') return [];
  if (/^-?\d[\d_]*(\.\d+)?$/.test(text)) return Number(text.replaceAll('_', ''));
  if (/^'[^']*'$/.test(text)) return text.slice(1, -1);
  throw new Error(`cannot evaluate the documented default \`${text}\``);
}

function rowsOf(group) {
  const table = tables.get(group);
  if (!table) throw new Error(`docs/configuration.md has no table marked <!-- options: ${group} -->`);
  return table.rows.map(([option, type, defaultValue, unit, effect, error]) => ({ option: firstCode(option), type: firstCode(type), defaultValue, unit, effect, error }));
}

/** Compares documented defaults (first code span of the Default column) with `resolved`. */
function checkDefaults(group, resolved, requiredCheck) {
  const { prefix } = GROUPS[group];
  const problems = [];
  for (const row of rowsOf(group)) {
    const name = row.option.slice(prefix.length);
    const documented = firstCode(row.defaultValue);
    if (documented === undefined) {
      if (/^required\b/.test(row.defaultValue)) {
        const error = requiredCheck(name);
        if (!(error instanceof core.ConfigurationError) || error.option !== row.option) problems.push(`${row.option} is documented as required, but leaving it out gives ${error}`);
      } else {
        problems.push(`${row.option}: the Default column has no value in a code span: '${row.defaultValue}'`);
      }
      continue;
    }
    let expected;
    try {
      expected = evaluate(documented);
    } catch (error) {
      problems.push(`${row.option}: ${error.message}`);
      continue;
    }
    const actual = resolved[name];
    const same = Array.isArray(expected) ? JSON.stringify(actual) === JSON.stringify(expected) : Object.is(actual, expected);
    if (!same) problems.push(`${row.option}: documented default ${documented}, the code's is ${typeof actual === 'object' ? JSON.stringify(actual) : String(actual)}`);
  }
  return problems;
}

function rejection(fn) {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return 'no error';
}

describe('docs/configuration.md matches the code', function () {
  it('OPTION_NAMES is the set resolveOptions() accepts', () => {
    expect([...OPTION_NAMES].sort()).to.deep.equal([...ACCEPTED_OPTIONS].sort());
  });

  it('every options table has the fixed column layout', () => {
    expect([...tables.keys()]).to.include.members(Object.keys(GROUPS));
    for (const [group, table] of tables) expect(table.header, `columns of the ${group} table`).to.deep.equal(COLUMNS);
    for (const group of tables.keys()) expect(Object.keys(GROUPS), `a table marked '${group}' documents no known group`).to.include(group);
  });

  for (const [group, { source, prefix, accepted }] of Object.entries(GROUPS)) {
    it(`${group}: every option in the code is documented, and every documented option exists`, async () => {
      const documented = rowsOf(group).map((r) => r.option);
      const declared = interfaceMembers(...source).map((m) => prefix + m.name);
      const hint = `interface ${source[1]} (${source[0]}) vs the ${group} table of docs/configuration.md: add a row for each option missing from the doc, remove each one missing from the code`;
      expect(differences(declared, documented), hint).to.deep.equal({ missingFromDoc: [], missingFromCode: [] });
      if (accepted) {
        const runtime = (await accepted()).map((n) => prefix + n);
        expect(differences(runtime, documented), `what the code accepts vs the ${group} table`).to.deep.equal({ missingFromDoc: [], missingFromCode: [] });
      }
      expect(new Set(documented).size, `an option of ${group} is documented twice`).to.equal(documented.length);
    });

    it(`${group}: documented types are the declared ones`, () => {
      const declared = new Map(interfaceMembers(...source).map((m) => [prefix + m.name, m.type]));
      const wrong = rowsOf(group)
        .filter((r) => declared.has(r.option) && r.type !== declared.get(r.option))
        .map((r) => `${r.option}: documented \`${r.type}\`, declared \`${declared.get(r.option)}\``);
      expect(wrong).to.deep.equal([]);
    });
  }

  it('ProcessProxyOptions: documented defaults are what resolveOptions() gives', () => {
    const resolved = resolveOptions({ workerModule: WORKER_MODULE });
    const problems = checkDefaults('ProcessProxyOptions', resolved, (name) => rejection(() => resolveOptions({})));
    expect(problems).to.deep.equal([]);
  });

  it('warmSpare: documented as on exactly when the options that turn it on are set', () => {
    const row = rowsOf('ProcessProxyOptions').find((r) => r.option === 'warmSpare');
    const documented = [...row.defaultValue.matchAll(/`(\w+)`/g)].map((m) => m[1]).filter((n) => OPTION_NAMES.includes(n));
    const numeric = ['maxMemoryMB', 'maxHandles', 'processRecycleThreshold', 'maxProcessLifetimeMs', 'idleTimeoutMs', 'hardMemoryLimitMB'];
    const turnsItOn = numeric.filter((name) => resolveOptions({ workerModule: WORKER_MODULE, [name]: 1000 }).warmSpare === true);
    expect(differences(turnsItOn, documented)).to.deep.equal({ missingFromDoc: [], missingFromCode: [] });
  });

  it('retry.*: documented defaults are what resolveOptions() gives', () => {
    const resolved = resolveOptions({ workerModule: WORKER_MODULE, retry: { methods: ['m'] } }).retry;
    const problems = checkDefaults('retry', resolved, (name) => {
      const retry = { methods: ['m'], attempts: 1, backoffMs: 0 };
      delete retry[name];
      return rejection(() => resolveOptions({ workerModule: WORKER_MODULE, retry }));
    });
    expect(problems).to.deep.equal([]);
  });

  it('limits.*: documented defaults are what resolveOptions() gives', () => {
    const resolved = resolveOptions({ workerModule: WORKER_MODULE, limits: {} }).limits;
    expect(checkDefaults('limits', resolved, () => 'not required')).to.deep.equal([]);
  });
});

// ─── errors.md ───────────────────────────────────────────────────────────────

describe('docs/errors.md matches the code', function () {
  const errorSections = sections(read('docs/errors.md'), '##');
  const documentedClasses = new Map(
    [...errorSections].map(([heading, body]) => [/^`?(\w+)`?$/.exec(heading)?.[1], body]).filter(([name]) => name !== undefined),
  );
  const exported = Object.entries(core).filter(([, value]) => typeof value === 'function' && (value === core.ProcessSandboxError || value.prototype instanceof core.ProcessSandboxError));

  it('documents every error class exported by @process-sandbox/core, and no other', () => {
    expect(exported.length).to.be.above(10);
    const names = exported.map(([name]) => name);
    expect(differences(names, [...documentedClasses.keys()])).to.deep.equal({ missingFromDoc: [], missingFromCode: [] });
  });

  it("gives each class's code as the class's static `code`", () => {
    const wrong = [];
    for (const [name, cls] of exported) {
      const body = documentedClasses.get(name) ?? '';
      const documented = /\*\*Code:\*\* `([^`]+)`/.exec(body)?.[1];
      if (documented !== cls.code) wrong.push(`${name}: documented ${documented}, static code ${cls.code}`);
    }
    expect(wrong).to.deep.equal([]);
  });

  it('names, under **Fields:**, the fields each class declares', () => {
    const missing = [];
    for (const [name] of exported) {
      const body = documentedClasses.get(name) ?? '';
      const fields = /\*\*Fields:\*\*([\s\S]*?)(?:\n\n|$)/.exec(body)?.[1] ?? '';
      for (const field of classFields('packages/abstractions/src/errors.ts', name)) {
        if (!fields.includes(`\`${field}\``)) missing.push(`${name}.${field}`);
      }
    }
    expect(missing).to.deep.equal([]);
  });
});

// ─── protocol.md ─────────────────────────────────────────────────────────────

describe('docs/protocol.md matches the code', function () {
  const protocol = read('docs/protocol.md');
  const messageSections = new Map(
    [...sections(protocol, '###')].map(([heading, body]) => {
      const match = /^`(\w+)` \((\d+)\)$/.exec(heading);
      return match ? [match[1], { kind: Number(match[2]), body }] : [undefined];
    }).filter(([name]) => name !== undefined),
  );

  it('documents every MessageKind with its number, and no other', () => {
    const code = Object.entries(MessageKind).map(([name, kind]) => `${name} (${kind})`);
    const doc = [...messageSections].map(([name, { kind }]) => `${name} (${kind})`);
    expect(differences(code, doc)).to.deep.equal({ missingFromDoc: [], missingFromCode: [] });
  });

  it('lists the fields of every message in order, as labelled in protocol.ts', () => {
    const wrong = [];
    for (const [name, { body }] of messageSections) {
      const labels = tupleLabels('packages/abstractions/src/protocol.ts', `${name}Message`);
      const rows = body.split('\n').filter((l) => /^\|\s*\d+\s*\|/.test(l)).map((l) => firstCode(cells(l)[1]));
      if (JSON.stringify(rows) !== JSON.stringify(labels)) wrong.push(`${name}: documented [${rows.join(', ')}], protocol.ts [${labels.join(', ')}]`);
    }
    expect(wrong).to.deep.equal([]);
  });

  it('documents every FailureReason with its number', () => {
    const table = markedTables(protocol, 'enum').get('FailureReason');
    const doc = table.rows.map((r) => `${firstCode(r[0])}=${firstCode(r[1])}`);
    const code = Object.entries(FailureReason).map(([name, value]) => `${name}=${value}`);
    expect(differences(code, doc)).to.deep.equal({ missingFromDoc: [], missingFromCode: [] });
  });

  for (const name of ['HealthSnapshot', 'WorkerSettings']) {
    it(`documents every field of ${name}`, () => {
      const table = markedTables(protocol, 'fields').get(name);
      const doc = table.rows.map((r) => firstCode(r[0]));
      const code = interfaceMembers('packages/abstractions/src/protocol.ts', name).map((m) => m.name);
      expect(differences(code, doc)).to.deep.equal({ missingFromDoc: [], missingFromCode: [] });
    });
  }

  it('states PROTOCOL_VERSION and MAX_HELLO_BYTES', () => {
    expect(Number(/`PROTOCOL_VERSION` is `(\d+)`/.exec(protocol)?.[1])).to.equal(PROTOCOL_VERSION);
    expect(Number(/`MAX_HELLO_BYTES` is `(\d+)`/.exec(protocol)?.[1])).to.equal(MAX_HELLO_BYTES);
  });
});

// ─── links ───────────────────────────────────────────────────────────────────

/** GitHub's anchor for a heading. */
function slug(heading) {
  return heading
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown) {
  const anchors = new Set();
  const seen = new Map();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = !fenced && /^#{1,6} (.+)$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1].trim());
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Documents other work produces; a link to one is not broken while it is still being written. */
const PENDING = new Set(['docs/benchmarks.md']);

describe('documentation links', function () {
  const files = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

  it('every relative link between the documents reaches a file and, with #, a heading', () => {
    const broken = [];
    for (const file of files) {
      const text = read(file).replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        const [path, anchor] = target.split('#');
        const resolved = path === '' ? file : new URL(path, new URL(file, root)).pathname.slice(new URL(root).pathname.length);
        if (!existsSync(new URL(resolved, root))) {
          if (!PENDING.has(resolved)) broken.push(`${file}: ${target} (no such file)`);
          continue;
        }
        if (anchor && resolved.endsWith('.md') && !anchorsOf(read(resolved)).has(anchor)) broken.push(`${file}: ${target} (no such heading)`);
      }
    }
    expect(broken).to.deep.equal([]);
  });
});

describe("docs/architecture.md's module map matches the code", function () {
  it('names every source file of @process-sandbox/core, and none that is gone', () => {
    const files = readdirSync(new URL('packages/core/src/', root), { recursive: true })
      .map((f) => String(f).replaceAll('\\', '/'))
      .filter((f) => f.endsWith('.ts'));
    const map = read('docs/architecture.md');
    const table = map.slice(map.indexOf('| Part | Files |'), map.indexOf('\n\n', map.indexOf('| Part | Files |')));
    const named = new Set([...table.matchAll(/`([\w/-]+\.ts)`/g)].map((m) => m[1]));
    expect(files.filter((f) => !named.has(f)), 'source files the map does not name').to.deep.equal([]);
    expect([...named].filter((f) => !files.includes(f)), 'files the map names that do not exist').to.deep.equal([]);
  });
});
