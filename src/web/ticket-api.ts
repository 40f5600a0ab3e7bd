// The JSON API under /api/v1: other systems read and act on tickets with a
// bearer token (`ticketd tokens create`). Every action is the one the
// command line runs (the Runtime's), with the same checks; this file only
// authenticates, validates the request's shape with fastify's JSON schemas
// and turns refusals into status codes with the error's stable code.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/load-config.js';
import { scopeAllows, type ApiTokenScope } from '../core/api-tokens.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { TICKET_STATUSES, type TicketStatus } from '../core/types.js';
import type { ApiCaller } from '../store/api-token-store.js';
import type { TicketCommands, TicketRow } from '../store/store.js';
import { ticketJson } from '../store/ticket-json.js';
import { parseReference } from '../thread/reference.js';

export const API_PREFIX = '/api/v1';
export const API_UNAUTHORIZED = 'TICKETD_API_UNAUTHORIZED';
export const API_FORBIDDEN = 'TICKETD_API_FORBIDDEN';
export const API_INVALID_REQUEST = 'TICKETD_API_INVALID_REQUEST';
export const API_NOT_FOUND = 'TICKETD_API_NOT_FOUND';
export const API_DISABLED = 'TICKETD_API_DISABLED';
const REQUEST_FAILED = 'TICKETD_WEB_REQUEST_FAILED';

/** A reply or note may be long (a pasted log); the status page's own limit is far smaller. */
const API_BODY_LIMIT = 1024 * 1024;

/**
 * Refusals by the ticket's state or by what a request named, each with the
 * status that says so: a conflict with the state (409), a request the
 * rules refuse (422), a ticket that does not exist (404).
 */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  TICKETD_TICKET_NOT_FOUND: 404,
  TICKETD_STATUS_UNCHANGED: 409,
  TICKETD_ASSIGNMENT_UNCHANGED: 409,
  TICKETD_HANDOFF_NOTE_REQUIRED: 422,
  TICKETD_QUEUE_UNKNOWN: 422,
  TICKETD_NOT_STAFF: 422,
};

type Assignment = { ticket: TicketRow };

/** What the API reads and does: the daemon's Runtime provides it. Read per request, so a reload reaches it. */
export interface TicketApiSite {
  readonly config: Pick<Config, 'http'>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly apiTokens: { verify(token: string): Promise<ApiCaller | null> };
  readonly store: Pick<TicketCommands, 'listTickets' | 'ticketDetail'>;
  addNote(ref: string, text: string, by: string, now: number): Promise<TicketRow>;
  addAgentReply(ref: string, text: string, now: number, opts: { by: string }): Promise<TicketRow>;
  assignOwner(ref: string, owner: string | null, note: string | null, by: string, now: number): Promise<Assignment>;
  handoff(ref: string, to: { queue?: string; owner?: string }, note: string, by: string, now: number): Promise<Assignment>;
  resolve(ref: string, text: string | null, now: number): Promise<TicketRow>;
}

/** The text of a reply or note: anything but blank, as on the command line. */
const TEXT = { type: 'string', pattern: '\\S', maxLength: 200_000 } as const;
const NAME = { type: 'string', minLength: 1, maxLength: 200 } as const;
const REF_PARAMS = {
  type: 'object',
  required: ['ref'],
  properties: { ref: { type: 'string', maxLength: 40 } },
} as const;

function body(properties: Record<string, unknown>, required: string[] = [], extra: Record<string, unknown> = {}) {
  return { type: 'object', additionalProperties: false, required, properties, ...extra };
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a token needs for the route. */
    scope?: ApiTokenScope;
  }
  interface FastifyRequest {
    /** Who the request's token stands for; set before any route of the API runs. */
    apiCaller: ApiCaller | null;
  }
}

/** Registers /api/v1 on the web server. The routes answer 404 (`TICKETD_API_DISABLED`) while `http.api.enabled` is off. */
export function registerTicketApi(app: FastifyInstance, site: TicketApiSite): void {
  void app.register(
    async (api) => {
      const send = (reply: FastifyReply, status: number, code: string, message: string) =>
        reply.code(status).type('application/json; charset=utf-8').send({ error: { code, message } });

      api.decorateRequest('apiCaller', null);

      api.addHook('onRequest', async (req) => {
        if (site.config.http.api?.enabled !== true)
          throw new ApiError(404, API_DISABLED, 'the JSON API is not enabled (http.api.enabled)');
        const header = req.headers.authorization ?? '';
        const m = /^Bearer +(\S+) *$/i.exec(header);
        if (!m) throw new ApiError(401, API_UNAUTHORIZED, 'send Authorization: Bearer <token> (ticketd tokens create)');
        const caller = await site.apiTokens.verify(m[1]!);
        if (!caller) throw new ApiError(401, API_UNAUTHORIZED, 'unknown or revoked token');
        req.apiCaller = caller;
      });

      api.addHook('preHandler', async (req) => {
        const needs = req.routeOptions.config.scope ?? 'read';
        if (!scopeAllows(req.apiCaller!.scope, needs))
          throw new ApiError(
            403,
            API_FORBIDDEN,
            `token ${req.apiCaller!.name} is ${req.apiCaller!.scope}-only; this needs ${needs}`,
          );
      });

      api.setNotFoundHandler((req, reply) => send(reply, 404, API_NOT_FOUND, `no route ${req.method} ${req.url.split('?')[0]}`));

      api.setErrorHandler((err: FastifyError, _req, reply) => {
        if (err instanceof ApiError) {
          if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="ticketd"');
          return send(reply, err.status, err.code, err.message);
        }
        const code = (err as { code?: string }).code;
        const status = code !== undefined ? STATUS_OF_CODE[code] : undefined;
        if (status !== undefined) return send(reply, status, code!, err.message);
        // Schema validation, a body that is not JSON or too large: the request's fault.
        if (err.validation || (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500))
          return send(reply, err.statusCode ?? 400, API_INVALID_REQUEST, err.message);
        site.logger.error({ code: REQUEST_FAILED, error: err.message, api: true }, 'API request failed');
        return send(reply, 500, REQUEST_FAILED, 'something went wrong on our side');
      });

      const refOf = (req: FastifyRequest<{ Params: { ref: string } }>): string => {
        const ref = parseReference(req.params.ref);
        if (!ref)
          throw new ApiError(404, 'TICKETD_TICKET_NOT_FOUND', `not a ticket reference: ${JSON.stringify(req.params.ref)}`);
        return ref;
      };
      /** Who an action is recorded as done by: the `by` the caller names, else its token. */
      const byOf = (req: FastifyRequest, given: string | undefined) => given?.trim() || `api:${req.apiCaller!.name}`;
      const now = () => site.clock.now().getTime();
      const show = async (ref: string) => ticketJson((await site.store.ticketDetail(ref))!);
      const acted = (req: FastifyRequest, action: string, ref: string) =>
        site.logger.info({ code: 'API_ACTION', action, ref, tokenName: req.apiCaller!.name }, `API ${action} on ${ref}`);

      api.get<{ Querystring: { status?: TicketStatus; queue?: string; mailbox?: string } }>(
        '/tickets',
        {
          schema: {
            querystring: {
              type: 'object',
              additionalProperties: false,
              properties: { status: { type: 'string', enum: TICKET_STATUSES }, queue: NAME, mailbox: NAME },
            },
          },
        },
        async (req) => {
          const list = await site.store.listTickets(req.query);
          return { tickets: list.map(({ team: _team, ...t }) => t) };
        },
      );

      api.get<{ Params: { ref: string } }>('/tickets/:ref', { schema: { params: REF_PARAMS } }, async (req) => {
        const ref = refOf(req);
        const detail = await site.store.ticketDetail(ref);
        if (!detail) throw new ApiError(404, 'TICKETD_TICKET_NOT_FOUND', `no ticket with reference ${ref}`);
        return ticketJson(detail);
      });

      const write = { config: { scope: 'write' as const }, bodyLimit: API_BODY_LIMIT };

      api.post<{ Params: { ref: string }; Body: { text: string; by?: string } }>(
        '/tickets/:ref/notes',
        { ...write, schema: { params: REF_PARAMS, body: body({ text: TEXT, by: NAME }, ['text']) } },
        async (req, reply) => {
          const t = await site.addNote(refOf(req), req.body.text, byOf(req, req.body.by), now());
          acted(req, 'note', t.ref);
          return reply.code(201).send(await show(t.ref));
        },
      );

      api.post<{ Params: { ref: string }; Body: { text: string; by?: string } }>(
        '/tickets/:ref/replies',
        { ...write, schema: { params: REF_PARAMS, body: body({ text: TEXT, by: NAME }, ['text']) } },
        async (req, reply) => {
          const t = await site.addAgentReply(refOf(req), req.body.text, now(), { by: byOf(req, req.body.by) });
          acted(req, 'reply', t.ref);
          return reply.code(201).send(await show(t.ref));
        },
      );

      api.post<{ Params: { ref: string }; Body: { owner: string | null; note?: string; by?: string } }>(
        '/tickets/:ref/assign',
        {
          ...write,
          schema: {
            params: REF_PARAMS,
            body: body({ owner: { type: ['string', 'null'], maxLength: 320 }, note: { type: 'string' }, by: NAME }, ['owner']),
          },
        },
        async (req) => {
          const { owner, note, by } = req.body;
          const r = await site.assignOwner(refOf(req), owner, note?.trim() || null, byOf(req, by), now());
          acted(req, 'assign', r.ticket.ref);
          return show(r.ticket.ref);
        },
      );

      api.post<{ Params: { ref: string }; Body: { queue?: string; to?: string; note?: string; by?: string } }>(
        '/tickets/:ref/handoff',
        {
          ...write,
          schema: {
            params: REF_PARAMS,
            body: body({ queue: NAME, to: { type: 'string', maxLength: 320 }, note: { type: 'string' }, by: NAME }, [], {
              anyOf: [{ required: ['queue'] }, { required: ['to'] }],
            }),
          },
        },
        async (req) => {
          const { queue, to, note, by } = req.body;
          const target = { ...(queue !== undefined ? { queue: queue.trim() } : {}), ...(to !== undefined ? { owner: to } : {}) };
          // A blank note goes on to be refused by the handoff itself, with its own code.
          const r = await site.handoff(refOf(req), target, note?.trim() ?? '', byOf(req, by), now());
          acted(req, 'handoff', r.ticket.ref);
          return show(r.ticket.ref);
        },
      );

      api.post<{ Params: { ref: string }; Body: { text?: string } | undefined }>(
        '/tickets/:ref/resolve',
        { ...write, schema: { params: REF_PARAMS, body: body({ text: TEXT }) } },
        async (req) => {
          const t = await site.resolve(refOf(req), req.body?.text ?? null, now());
          acted(req, 'resolve', t.ref);
          return show(t.ref);
        },
      );
    },
    { prefix: API_PREFIX },
  );
}
