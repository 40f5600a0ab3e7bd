import { boundedText } from '../core/bounded-text.js';
import type { ParsedMessage } from '../core/types.js';

/** What a routing rule may look at; every string is a case-insensitive regular expression, searched (not anchored). */
export interface RouteMatch {
  mailbox?: string;
  to?: string;
  fromDomain?: string;
  subject?: string;
  body?: string;
  header?: Record<string, string>;
}

export interface RouteSet {
  queue?: string;
  priority?: 'low' | 'normal' | 'high' | 'urgent';
  tags?: string[];
}

export interface RouteRule {
  name: string;
  match: RouteMatch;
  set: RouteSet;
}

/** One condition of a rule, and what it was held against. */
export interface ConditionResult {
  field: string;
  pattern: string;
  matched: boolean;
  /** The text that matched (bounded), or what was there when nothing did. */
  found: string;
}

export interface RuleTrace {
  rule: string;
  matched: boolean;
  conditions: ConditionResult[];
}

/** Where a new ticket goes: the first rule whose every condition holds, else the mailbox's default queue. */
export interface RouteVerdict {
  /** The rule that decided, or null when none matched. */
  rule: string | null;
  queue: string | null;
  priority: NonNullable<RouteSet['priority']> | null;
  tags: string[];
  /** Every rule tried, in order, up to and including the one that matched. */
  trace: RuleTrace[];
}

export interface RouteInput {
  mailbox: string;
  defaultQueue: string | null;
}

/** Only the start of a body is searched: a rule's keywords are in the first lines, and a regex over megabytes costs too much. */
export const ROUTED_BODY_CHARS = 64 * 1024;
const SHOWN_CHARS = 80;

/**
 * Evaluates the rules in order against a message opening a ticket. Within a
 * rule every condition given must hold (a rule with none matches all); the
 * first rule that holds decides, so a specific rule goes above a general one.
 */
export function routeMessage(msg: ParsedMessage, input: RouteInput, rules: readonly RouteRule[]): RouteVerdict {
  const trace: RuleTrace[] = [];
  for (const rule of rules) {
    const conditions = conditionsOf(rule.match, msg, input);
    const matched = conditions.every((c) => c.matched);
    trace.push({ rule: rule.name, matched, conditions });
    if (matched) {
      return {
        rule: rule.name,
        queue: rule.set.queue ?? input.defaultQueue,
        priority: rule.set.priority ?? null,
        tags: [...new Set(rule.set.tags ?? [])],
        trace,
      };
    }
  }
  return { rule: null, queue: input.defaultQueue, priority: null, tags: [], trace };
}

function conditionsOf(match: RouteMatch, msg: ParsedMessage, input: RouteInput): ConditionResult[] {
  const out: ConditionResult[] = [];
  const check = (field: string, pattern: string | undefined, values: string[]) => {
    if (pattern === undefined) return;
    const re = new RegExp(pattern, 'iu');
    for (const value of values) {
      const m = re.exec(value);
      if (m) {
        out.push({ field, pattern, matched: true, found: shown(m[0] === '' ? value : m[0]) });
        return;
      }
    }
    out.push({ field, pattern, matched: false, found: shown(values.join(', ')) });
  };
  check('mailbox', match.mailbox, [input.mailbox]);
  check('to', match.to, recipients(msg));
  check('fromDomain', match.fromDomain, [msg.from?.address.split('@')[1] ?? '']);
  check('subject', match.subject, [msg.subject]);
  check('body', match.body, [msg.text.slice(0, ROUTED_BODY_CHARS)]);
  for (const [name, pattern] of Object.entries(match.header ?? {})) {
    check(`header ${name}`, pattern, msg.headers.get(name.toLowerCase()) ?? []);
  }
  return out;
}

/** The addresses a message was sent to: To and Cc, and what the delivering MTA stamped (an alias or Bcc shows only there). */
function recipients(msg: ParsedMessage): string[] {
  const stamped = ['delivered-to', 'x-original-to']
    .flatMap((h) => msg.headers.get(h) ?? [])
    .map((v) => v.trim().replace(/^<|>$/g, '').toLowerCase());
  return [...new Set([...msg.to.map((a) => a.address), ...msg.cc.map((a) => a.address), ...stamped])];
}

function shown(text: string): string {
  return boundedText(
    text
      .slice(0, 4 * SHOWN_CHARS)
      .replace(/\s+/g, ' ')
      .trim(),
    SHOWN_CHARS,
  );
}
