/**
 * The contract between the host and the worker process beyond the wire protocol: what the host
 * tells a worker through its environment and descriptors before the first frame, the OS limits the
 * worker applies to itself, and the exit codes it ends with. Both sides import it from here, so core
 * needs nothing of @process-sandbox/worker but the path of its entry point.
 *
 * The worker reads and removes these variables (bin.ts) before anything else runs, so the
 * implementation never sees them. The channel's own variables are in protocol.ts (ENV_CHANNEL_FD,
 * ENV_PIPE, ENV_TOKEN).
 */

/** Pid of the host that spawned the worker: the parent the watchdog expects. */
export const ENV_HOST_PID = 'PROCESS_SANDBOX_HOST_PID';
/** File descriptor of the lifeline: a socket whose other end only the host holds; EOF means it is gone. */
export const ENV_LIFELINE_FD = 'PROCESS_SANDBOX_LIFELINE_FD';
/** JSON of the OS limits (WorkerLimits) to apply before the implementation loads. */
export const ENV_LIMITS = 'PROCESS_SANDBOX_LIMITS';
/**
 * `0` turns the parent-death guard (watchdog thread and PR_SET_PDEATHSIG) off. A diagnostic switch,
 * used by the tests to prove that the host's own exit guards work without it; never needed otherwise.
 */
export const ENV_PARENT_GUARD = 'PROCESS_SANDBOX_PARENT_GUARD';
/**
 * `1`: the worker runs as a user of its own (the `user` option), and makes itself non-dumpable
 * (prctl PR_SET_DUMPABLE 0) before it says Hello: other processes of that uid (other pools' workers)
 * can then no longer read its memory, environment or descriptors, nor ptrace it.
 */
export const ENV_NOT_DUMPABLE = 'PROCESS_SANDBOX_NOT_DUMPABLE';

/** The file descriptor the host gives the lifeline in the worker (stdio index 3). */
export const LIFELINE_FD = 3;

/** OS limits applied by the worker to itself, as setrlimit sees them (soft = hard unless noted). */
export interface WorkerLimits {
  /** RLIMIT_NOFILE. */
  maxOpenFiles?: number;
  /** RLIMIT_AS, in MiB. */
  maxAddressSpaceMB?: number;
  /** RLIMIT_CPU, in seconds: SIGXCPU at the soft limit, SIGKILL one second later. */
  maxCpuSeconds?: number;
}

/** The exit codes a worker ends with by itself (anything else: killed, or crashed in native code). */
export const WorkerExitCode = {
  Ok: 0,
  /** Its implementation could not load or construct (after a StartFailed failure frame). */
  StartFailed: 78,
  /** An error escaped the implementation outside any call, or the worker's own code failed. */
  Fatal: 70,
  /** The host broke the protocol, or the channel failed. */
  ProtocolError: 76,
} as const;
