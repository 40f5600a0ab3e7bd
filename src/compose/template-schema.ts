// The variables each outgoing mail kind may use. This is the contract
// between the code that sends mail and the operators who edit templates:
// `templates check` renders every template with the sample values below, and
// a template naming anything not listed here is refused at load. Durations,
// instants, shares and statuses are values, never words: the template turns
// them into its own language with the format helpers ({{duration}},
// {{datetime}}, {{percent}}, {{#if (eq status "…")}}).

export type TemplatePart = 'subject' | 'text' | 'html';
export const TEMPLATE_PARTS: readonly TemplatePart[] = ['subject', 'text', 'html'];

export interface TemplateVariable {
  description: string;
  sample: string | number;
  /** The only values the sender ever passes, when the set is closed. */
  values?: readonly string[];
}

export interface TemplateKindSchema {
  description: string;
  /** Customer mails must carry `[ref]` in the subject so replies thread back to the ticket. */
  audience: 'customer' | 'staff';
  variables: Readonly<Record<string, TemplateVariable>>;
}

const ref = { description: 'Ticket reference, e.g. ACME-7K3QH9', sample: 'ACME-7K3QH9' } as const;
const subject = {
  description: "The customer's subject line, as they wrote it",
  sample: 'Printer on the 3rd floor keeps jamming',
} as const;
const customerName = {
  description: "The customer's display name; may be '' when their mail had none",
  sample: 'Jane Doe',
} as const;
const statusUrl = {
  description: 'Link to the public status page of this ticket',
  sample: 'https://support.example.com/status/ACME-7K3QH9/q8Zt2kLw',
} as const;
const mailboxAddress = {
  description: 'Address of the mailbox that received the request (replies go here)',
  sample: 'support@example.com',
} as const;
const queuePosition = {
  description: 'Number of open requests ahead of this one (integer, 0 when none)',
  sample: 3,
} as const;

const HOUR_MS = 3_600_000;

const RATING_FORM_SAMPLE = `${statusUrl.sample}#rate`;

/**
 * The rating form's links: one to the form, and one per score (1 to 5) that
 * opens it with that score chosen, so a customer rates with one click and a
 * confirmation. Five variables, not a list: templates have no loops.
 */
function ratingLinks(when: string) {
  const score = (n: number) => ({
    description: `Link to the rating form with score ${n} of 5 already chosen (the customer confirms it there); ${when}`,
    sample: `${statusUrl.sample}?score=${n}#rate`,
  });
  return {
    ratingUrl: {
      description: `Link to the rating form on the status page, no score chosen; ${when}`,
      sample: RATING_FORM_SAMPLE,
    },
    ratingUrl1: score(1),
    ratingUrl2: score(2),
    ratingUrl3: score(3),
    ratingUrl4: score(4),
    ratingUrl5: score(5),
  } as const;
}

export const TEMPLATE_SCHEMA = {
  ack: {
    description: 'Acknowledgement sent as soon as a new ticket is opened',
    audience: 'customer',
    variables: {
      ref,
      subject,
      customerName,
      statusUrl,
      mailboxAddress,
      firstResponseEstimate: {
        description:
          'Expected time to a first reply in milliseconds, shown with {{duration firstResponseEstimate}}; 0 when no SLA applies',
        sample: 4 * HOUR_MS,
      },
      queuePosition,
      receivedAt: {
        description: 'When the message arrived, an ISO instant: show it with {{datetime receivedAt}}',
        sample: '2025-03-03T09:41:00.000Z',
      },
    },
  },
  'agent-reply': {
    description: "Wrapper around an agent's reply to the customer",
    audience: 'customer',
    variables: {
      ref,
      subject,
      customerName,
      body: {
        description: "The agent's reply as plain text (use {{paragraphs body}} in HTML)",
        sample:
          'Hello Jane,\n\nthe technician replaced the feed roller this morning.\nPlease let us know if it jams again.\n\nBest regards,\nSam',
      },
      statusUrl,
      ...ratingLinks("when this reply goes with the ticket's resolution; '' otherwise (the form's links are only offered then)"),
      mailboxAddress,
    },
  },
  resolved: {
    description:
      "Tells the customer their request was resolved, when staff resolve it without a last reply; it invites a rating (a resolution with a reply sends 'agent-reply' instead)",
    audience: 'customer',
    variables: {
      ref,
      subject,
      customerName,
      statusUrl,
      ...ratingLinks('always set'),
      mailboxAddress,
    },
  },
  'delay-notice': {
    description: 'Apology sent when a ticket waits longer than its SLA allows',
    audience: 'customer',
    variables: {
      ref,
      subject,
      customerName,
      waited: {
        description: 'How long the customer has waited so far, in milliseconds: {{duration waited}}',
        sample: 2 * 24 * HOUR_MS,
      },
      status: {
        description:
          "Where the ticket stands: 'queued' (no reply from us yet), 'in-progress' (we replied and work on it) or 'on-hold'",
        sample: 'in-progress',
        values: ['queued', 'in-progress', 'on-hold'],
      },
      onHoldReason: {
        description: "Why the ticket is on hold; '' when it is not on hold",
        sample: 'waiting for a replacement part',
      },
      estimate: {
        description: 'Expected time until the next step, in milliseconds: {{duration estimate}}',
        sample: 24 * HOUR_MS,
      },
      estimateSource: {
        description: "'history' when the estimate comes from similar past tickets, 'target' when it is the SLA target",
        sample: 'history',
        values: ['history', 'target'],
      },
      queuePosition,
      statusUrl,
      mailboxAddress,
      noticeNumber: { description: 'How many delay notices this one makes for the ticket (1 for the first)', sample: 1 },
    },
  },
  'staff-warning': {
    description: 'Warning to staff that a ticket is close to breaching its SLA',
    audience: 'staff',
    variables: {
      ref,
      subject,
      policy: { description: 'Name of the SLA policy', sample: 'standard' },
      target: {
        description: "Which SLA target is at risk: 'first-response' or 'resolution'",
        sample: 'first-response',
        values: ['first-response', 'resolution'],
      },
      threshold: { description: 'Share of the target time already used, 0.8 for 80%: {{percent threshold}}', sample: 0.8 },
      due: {
        description: "When the target is breached, an ISO instant: {{datetime due}}; '' when no deadline runs",
        sample: '2025-03-03T13:41:00.000Z',
      },
      requester: { description: 'Who asked, name and address', sample: 'Jane Doe <jane@example.com>' },
      ticketUrl: { description: 'Link to the status page of this ticket', sample: statusUrl.sample },
    },
  },
  'new-ticket-notice': {
    description: "Tells a queue's staff of a new ticket routed to it; replies to it come back to the ticket",
    audience: 'staff',
    variables: {
      ref,
      subject,
      requester: { description: 'Who asked, name and address', sample: 'Jane Doe <jane@example.com>' },
      queue: { description: 'The queue the ticket was routed to', sample: 'Hardware' },
      request: { description: "The customer's text (the start of it, for a long one)", sample: 'SN 4711 · E-13' },
      mailboxAddress,
      ticketUrl: { description: "Link to the ticket's status page, as the customer sees it", sample: statusUrl.sample },
    },
  },
  'handoff-notice': {
    description: 'Tells the queue (or person) a ticket was handed to what happened so far; replies to it come back to the ticket',
    audience: 'staff',
    variables: {
      ref,
      subject,
      requester: { description: 'Who asked, name and address', sample: 'Jane Doe <jane@example.com>' },
      from: { description: "Queue or person it came from; '' when it had none", sample: 'Front desk' },
      to: { description: 'Queue or person it now belongs to', sample: 'Hardware' },
      by: { description: 'Who handed it on: a staff address or a login', sample: 'sam@example.com' },
      note: { description: 'Why, and what the receiving side needs to know (internal)', sample: 'SN 4711 · E-13 · 2×' },
      handoffCount: { description: 'Handoffs of this ticket so far, this one included', sample: 2 },
      story: {
        description:
          'The ticket so far, oldest first, as plain text: each message and internal note under a line with its time and sender (#note marks internal notes)',
        sample:
          '── 2025-03-03 09:41 +00:00 ── jane@example.com\nSN 4711 E-13\n\n── 2025-03-03 10:02 +00:00 ── #note sam@example.com\nSN 4711 ✓',
      },
      mailboxAddress,
      ticketUrl: { description: "Link to the ticket's status page, as the customer sees it", sample: statusUrl.sample },
    },
  },
} as const satisfies Record<string, TemplateKindSchema>;

/**
 * What a vetted answer (templates/answers/) may use. Its text becomes part
 * of an agent reply, which carries the status link itself.
 */
export const ANSWER_VARIABLES = {
  ref,
  subject,
  customerName,
  mailboxAddress,
} as const satisfies Record<string, TemplateVariable>;

export type AnswerVars = { [N in keyof typeof ANSWER_VARIABLES]: string };

export type TemplateKind = keyof typeof TEMPLATE_SCHEMA;
export const TEMPLATE_KINDS = Object.keys(TEMPLATE_SCHEMA) as TemplateKind[];

type ValueOf<V> = V extends { values: readonly (infer U)[] } ? U : V extends { sample: number } ? number : string;

/** What the sender passes to `TemplateRegistry.render` for a kind. */
export type TemplateVars<K extends TemplateKind> = {
  [N in keyof (typeof TEMPLATE_SCHEMA)[K]['variables']]: ValueOf<(typeof TEMPLATE_SCHEMA)[K]['variables'][N]>;
};

export function isTemplateKind(name: string): name is TemplateKind {
  return Object.hasOwn(TEMPLATE_SCHEMA, name);
}

export function variablesOf(kind: TemplateKind): Readonly<Record<string, TemplateVariable>> {
  return TEMPLATE_SCHEMA[kind].variables;
}

export function sampleVars<K extends TemplateKind>(kind: K): TemplateVars<K> {
  const out: Record<string, string | number> = {};
  for (const [name, spec] of Object.entries(variablesOf(kind))) out[name] = spec.sample;
  return out as TemplateVars<K>;
}
