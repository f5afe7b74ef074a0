// The kernel32 declarations of the Windows guard and health sampler, built on THIS platform: koffi's
// structs and prototypes do not need Windows, so a bad type (the guard was once dead on Windows
// because koffi rejected one of its type names) fails here, on Linux CI, not only on Windows.
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { win32Types } from '../packages/core/dist/os/win32-api.js';

let koffi;
try {
  koffi = createRequire(import.meta.url)('koffi');
} catch {
  koffi = undefined;
}

describe('Windows API declarations (any platform)', function () {
  before(function () {
    if (!koffi) this.skip(); // koffi is an optional dependency; CI installs it
  });

  it('builds every structure and every function prototype', function () {
    const types = win32Types(koffi);
    expect(Object.keys(types.prototypes)).to.include.members([
      'CreateJobObjectW', 'SetInformationJobObject', 'AssignProcessToJobObject', 'TerminateJobObject',
      'OpenProcess', 'CloseHandle', 'K32GetProcessMemoryInfo', 'GetProcessHandleCount', 'GetProcessTimes',
    ]);
    for (const [name, prototype] of Object.entries(types.prototypes)) expect(prototype, name).to.not.equal(undefined);
    // Built once: koffi type definitions are process-wide.
    expect(win32Types(koffi)).to.equal(types);
  });

  it('lays the structures out as the Windows SDK does on x64', function () {
    if (process.arch !== 'x64' && process.arch !== 'arm64') this.skip(); // the SDK sizes below are 64-bit ones
    const { structs } = win32Types(koffi);
    expect(koffi.sizeof(structs.JOBOBJECT_BASIC_LIMIT_INFORMATION)).to.equal(64);
    expect(koffi.offsetof(structs.JOBOBJECT_BASIC_LIMIT_INFORMATION, 'LimitFlags')).to.equal(16);
    expect(koffi.offsetof(structs.JOBOBJECT_BASIC_LIMIT_INFORMATION, 'Affinity')).to.equal(48);
    expect(koffi.sizeof(structs.IO_COUNTERS)).to.equal(48);
    expect(koffi.sizeof(structs.JOBOBJECT_EXTENDED_LIMIT_INFORMATION)).to.equal(144);
    expect(koffi.offsetof(structs.JOBOBJECT_EXTENDED_LIMIT_INFORMATION, 'ProcessMemoryLimit')).to.equal(112);
    expect(koffi.sizeof(structs.PROCESS_MEMORY_COUNTERS_EX)).to.equal(80);
    expect(koffi.offsetof(structs.PROCESS_MEMORY_COUNTERS_EX, 'WorkingSetSize')).to.equal(16);
    expect(koffi.offsetof(structs.PROCESS_MEMORY_COUNTERS_EX, 'PrivateUsage')).to.equal(72);
    expect(koffi.sizeof(structs.FILETIME)).to.equal(8);
  });

  it('uses no process-wide koffi type name, so a host declaring its own HANDLE or FILETIME is unaffected', function () {
    win32Types(koffi);
    // Would throw "Duplicate type name" had the declarations registered these names.
    for (const name of ['HANDLE', 'FILETIME', 'IO_COUNTERS', 'JOBOBJECT_EXTENDED_LIMIT_INFORMATION', 'PROCESS_MEMORY_COUNTERS_EX']) {
      expect(() => koffi.opaque(`${name}`), name).to.not.throw();
    }
  });
});
