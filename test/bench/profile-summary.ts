// Reads a V8 CPU profile (`node --cpu-prof`) and lists where the time went:
// the functions with the most self time, and the same summed by package or
// by ticketd source file. Run on its own with
// `node dist/test/bench/profile-summary.js FILE.cpuprofile [TOP]`.

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  functions: { name: string; where: string; selfMs: number }[];
  /** Self time summed per npm package, per ticketd file (dist/...), or per Node/V8 bucket. */
  owners: { owner: string; selfMs: number }[];
}

function ownerOf(url: string, fn: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return fn || '(native)';
}

export function summarizeProfile(file: string, top = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    totalUs += dt;
  });
  const byFunction = new Map<string, { name: string; where: string; us: number }>();
  const byOwner = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    const name = functionName || '(anonymous)';
    const owner = ownerOf(url, name);
    const where = url ? `${owner}:${lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const entry = byFunction.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
  }
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    totalMs: ms(totalUs),
    functions: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: ms(f.us) })),
    owners: [...byOwner.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([owner, us]) => ({ owner, selfMs: ms(us) })),
  };
}

export function formatProfileSummary(s: ProfileSummary): string {
  const pct = (x: number) => `${((100 * x) / s.totalMs).toFixed(1).padStart(5)} %`;
  return [
    `sampled ${s.totalMs} ms; top self time by function:`,
    ...s.functions.map((f) => `  ${f.selfMs.toFixed(1).padStart(9)} ms ${pct(f.selfMs)}  ${f.name}  ${f.where}`),
    'by package / file:',
    ...s.owners.map((o) => `  ${o.selfMs.toFixed(1).padStart(9)} ms ${pct(o.selfMs)}  ${o.owner}`),
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: profile-summary FILE.cpuprofile [TOP]\n');
    process.exit(64);
  }
  process.stdout.write(`${formatProfileSummary(summarizeProfile(file, Number(top ?? 20)))}\n`);
}
