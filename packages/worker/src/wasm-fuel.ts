/**
 * Fuel: a per-call budget that stops a runaway WebAssembly call deterministically, where a timeout
 * would stop it wherever the clock says. The module is instrumented once, at load, with binaryen
 * (loaded only here, only when `wasm.fuelPerCall` is set: it is a 15 MB module that takes most of a
 * second to load). Binaryen's `log-execution` pass puts a call to one function at every function
 * entry, loop header (so once per loop iteration) and function exit (each `return`, and the end of a
 * body that is a block); that function, which we
 * define in place of the import the pass asks for, takes one unit from a mutable i64 global and
 * traps when none is left. The global is exported as `__ps_fuel`: the worker sets it to the budget
 * before each call and reads what is left after.
 *
 * Same module, same input, same count: the trap comes at the same instruction every time. On
 * exhaustion the global is set to -1 before the trap, so the worker can tell a fuel trap from any
 * other. Small functions (the counter included) are inlined afterwards, which keeps the counting
 * inside each function instead of a call per tick.
 */
import { StartupFailure } from './startup-failure.js';

export const FUEL_GLOBAL = '__ps_fuel';
/** The value the counter is left at when the budget ran out. */
export const FUEL_EXHAUSTED = -1n;

interface Binaryen {
  readBinary(data: Uint8Array): BinaryenModule;
  getFunctionInfo(fn: number): { name: string; module: string; base: string };
  Features: { All: number };
  i32: number;
  i64: number;
  none: number;
  createType(types: number[]): number;
  setAlwaysInlineMaxSize(size: number): void;
}
interface BinaryenModule {
  runPasses(passes: string[]): void;
  setFeatures(features: number): void;
  getNumFunctions(): number;
  getFunctionByIndex(i: number): number;
  removeFunction(name: string): void;
  addFunction(name: string, params: number, results: number, vars: number[], body: number): number;
  addGlobal(name: string, type: number, mutable: boolean, init: number): number;
  addGlobalExport(internal: string, external: string): number;
  validate(): number;
  emitBinary(): Uint8Array;
  dispose(): void;
  i64: { const(value: bigint): number; eqz(v: number): number; sub(a: number, b: number): number };
  global: { get(name: string, type: number): number; set(name: string, value: number): number };
  if(cond: number, ifTrue: number, ifFalse?: number): number;
  block(label: string | null, children: number[], type?: number): number;
  unreachable(): number;
}

let binaryen: Promise<Binaryen> | undefined;

async function loadBinaryen(): Promise<Binaryen> {
  binaryen ??= import('binaryen').then(
    (m) => (m as unknown as { default: Binaryen }).default,
    (error: unknown) => {
      binaryen = undefined;
      throw new StartupFailure(`wasm.fuelPerCall needs the package 'binaryen' (npm install binaryen), which could not be loaded: ${(error as Error).message}`, { cause: error });
    },
  );
  return binaryen;
}

/** The module with fuel counting added; `budget` is also what its start function (if any) may use. */
export async function instrumentFuel(bytes: Uint8Array, budget: number): Promise<Uint8Array> {
  const b = await loadBinaryen();
  let module: BinaryenModule;
  try {
    module = b.readBinary(bytes);
    module.setFeatures(b.Features.All);
  } catch (error) {
    throw new StartupFailure(`binaryen could not read the module to add fuel: ${(error as Error).message}`, { cause: error });
  }
  try {
    const imported = (): Set<string> => {
      const names = new Set<string>();
      for (let i = 0; i < module.getNumFunctions(); i++) {
        const info = b.getFunctionInfo(module.getFunctionByIndex(i));
        if (info.module) names.add(info.name);
      }
      return names;
    };
    const before = imported();
    module.runPasses(['log-execution']);
    // The import the pass added (its module name varies with binaryen's version and the module's imports).
    const tick = [...imported()].find((name) => !before.has(name));
    if (tick === undefined) throw new StartupFailure('binaryen added no fuel counter (its log-execution pass changed?)');
    module.removeFunction(tick);
    module.addGlobal(FUEL_GLOBAL, b.i64, true, module.i64.const(BigInt(budget)));
    module.addGlobalExport(FUEL_GLOBAL, FUEL_GLOBAL);
    const fuel = () => module.global.get(FUEL_GLOBAL, b.i64);
    // (param i32): the pass passes a site id, unused. Empty: mark exhausted, trap. Else take one.
    module.addFunction(
      tick,
      b.createType([b.i32]),
      b.none,
      [],
      module.block(null, [
        module.if(module.i64.eqz(fuel()), module.block(null, [module.global.set(FUEL_GLOBAL, module.i64.const(FUEL_EXHAUSTED)), module.unreachable()])),
        module.global.set(FUEL_GLOBAL, module.i64.sub(fuel(), module.i64.const(1n))),
      ]),
    );
    // The counter is a dozen nodes: inline it everywhere (binaryen's default inlines only 2-node
    // functions). No other pass: the plugin's own code stays as it was built.
    b.setAlwaysInlineMaxSize(32);
    module.runPasses(['inlining']);
    if (!module.validate()) throw new StartupFailure('the module did not validate after adding fuel counting');
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}
