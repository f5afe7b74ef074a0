// The probe's worker (bench/experiments/spike-probe.mjs): an echo that also says which process ran it
// and when (CLOCK_MONOTONIC, in ms: the same clock in every process on the machine).
export class Probe {
  stamp(x) {
    return [x, process.pid, Number(process.hrtime.bigint()) / 1e6];
  }
}
