// The real daemon as a child process (`ticketd start`), watched the way an
// operator would: its log lines, and its memory from /proc.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface DaemonOptions {
  configPath: string;
  /** Write a V8 CPU profile of the daemon into this directory. */
  cpuProfileDir?: string;
  /** Write the daemon's event-loop delay histogram (JSON) to this file on exit. */
  eventLoopFile?: string;
  /** Keep every line the daemon logs (stdout and stderr) in this file. */
  logFile?: string;
}

export interface BenchDaemon {
  child: ChildProcess;
  pid: number;
  /** performance.now() when DAEMON_STARTED was logged. */
  startedAt: number;
  /** MSG_TAKEN and MSG_QUARANTINED lines so far. */
  taken(): number;
  /** The kernel's figures for the process, in MB. */
  memory(): { rssMb: number; hwmMb: number };
  /** CPU time the process has used so far (user + system, all its threads), in ms. */
  cpuMs(): number;
  /** SIGTERM, then SIGKILL if it is still there after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** The last log lines, for a failure message. */
  tail(): string;
}

/** The built CLI, seen from dist/test/bench/. */
export const CLI = resolve(import.meta.dirname, '../../src/cli/main.js');
const PROBE = join(import.meta.dirname, 'event-loop-probe.js');

export async function startBenchDaemon(o: DaemonOptions, startTimeoutMs = 30_000): Promise<BenchDaemon> {
  const nodeArgs = [
    ...(o.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfileDir}`] : []),
    ...(o.eventLoopFile ? ['--import', pathToFileURL(PROBE).href] : []),
  ];
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'start', '--config', o.configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(o.eventLoopFile ? { TICKETD_BENCH_EVENT_LOOP_FILE: o.eventLoopFile } : {}) },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (o.logFile) {
    const log = createWriteStream(o.logFile);
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
  }
  let taken = 0;
  const tail: string[] = [];
  let buf = '';
  let onStarted: (() => void) | null = null;
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.includes('"code":"MSG_TAKEN"') || line.includes('"code":"MSG_QUARANTINED"')) taken++;
      else if (line.includes('"code":"DAEMON_STARTED"')) onStarted?.();
      tail.push(line);
      if (tail.length > 30) tail.shift();
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    tail.push(`stderr: ${d.toString().trimEnd()}`);
    if (tail.length > 30) tail.shift();
  });
  const stop = async (graceMs = 15_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const started = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), startTimeoutMs);
    onStarted = () => {
      clearTimeout(timer);
      resolve(true);
    };
    void exited.then(() => resolve(false));
  });
  if (!started) {
    await stop(2_000);
    throw new Error(`ticketd did not start within ${startTimeoutMs} ms:\n${tail.join('\n')}`);
  }
  const pid = child.pid!;
  return {
    child,
    pid,
    startedAt: performance.now(),
    taken: () => taken,
    memory: () => procMemory(pid),
    cpuMs: () => procCpuMs(pid),
    stop,
    tail: () => tail.join('\n'),
  };
}

/** VmRSS and VmHWM (the peak) of a process, in MB; zeros once it is gone. */
export function procMemory(pid: number): { rssMb: number; hwmMb: number } {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return { rssMb: 0, hwmMb: 0 };
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssMb: Math.round(kb('VmRSS') / 1024), hwmMb: Math.round(kb('VmHWM') / 1024) };
}

/**
 * User plus system time of a process, in ms; 0 once it is gone. On a shared
 * machine this moves far less with the load than wall time does, so it is the
 * figure to compare between runs.
 */
export function procCpuMs(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // Fields after the command name (which may hold spaces): state is the 3rd field, utime the 14th, stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // /proc counts in USER_HZ, 100 per second on Linux.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
