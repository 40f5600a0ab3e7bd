import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config, MailboxConfig } from '../config/load-config.js';
import { STATUS_PAGE_LOOKUPS_PER_MINUTE } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { ListenError } from '../core/listen-error.js';
import { FailedLookupLimiter, LookupLimiter } from './failed-lookup-limiter.js';
import type { WebPages } from './page-templates.js';
import type { Readiness } from './readiness.js';
import { MESSAGE_READ_CHARS, pickHistoryPage, statusView, type SlaPromise } from './status-page.js';
import { StatusLinks } from '../core/status-links.js';
import type { StatusPageData, StatusPageStorage } from './status-page-store.js';
import { registerTicketApi, type TicketApiSite } from './ticket-api.js';

export const WEB_REQUEST_FAILED = 'TICKETD_WEB_REQUEST_FAILED';
export const WEB_LISTEN_FAILED = 'TICKETD_WEB_LISTEN_FAILED';

/** Sent with every response, pages and JSON alike. The pages carry no script at all. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-robots-tag': 'noindex',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
};

const DAY_MS = 86_400_000;
const TOKEN_PATH = '/t/';
/** Compared against when no stored link matched, so a miss costs what a hit costs. */
const NO_MATCH_HASH = '0'.repeat(64);

/**
 * What the server reads from the daemon: the daemon's Runtime provides it.
 * Read per request, so a SIGHUP reload reaches the pages too.
 */
export interface StatusSite {
  readonly config: Pick<Config, 'http' | 'statusPage' | 'publicUrl'>;
  /** The status page's templates; null when the web server is disabled. */
  readonly pages: WebPages | null;
  /** Where the pages are read from. */
  readonly statusPages: StatusPageStorage;
  readonly sla: { promise(ticket: StatusPageData['ticket']): Promise<SlaPromise | null> };
  readonly clock: Clock;
  readonly logger: Logger;
  mailbox(name: string): Pick<MailboxConfig, 'address' | 'language' | 'timezone'>;
}

export interface WebServerOptions {
  runtime: StatusSite;
  /** What `/readyz` reports; the daemon builds it from its workers. */
  readiness: () => Promise<Readiness>;
  /** What the JSON API under /api/v1 reads and does; without it there is no API at all. */
  api?: TicketApiSite;
}

export interface WebServer {
  app: FastifyInstance;
  /** The address it listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  close(): Promise<void>;
}

/** `?page=N` of a status URL; null (the newest page) when absent or not a page number. */
function requestedPage(req: FastifyRequest): number | null {
  const value = (req.query as Record<string, unknown> | undefined)?.page;
  return typeof value === 'string' && /^[1-9]\d{0,5}$/.test(value) ? Number(value) : null;
}

/**
 * The customer-facing HTTP server: `/t/<token>` (the status page),
 * `/healthz`, `/readyz`, and the JSON API when `api` is given (it answers
 * only while `http.api.enabled`). Request logging stays off, because every status
 * URL carries a secret.
 */
export function buildWebServer(o: WebServerOptions): FastifyInstance {
  const { runtime } = o;
  // Read per request, so a SIGHUP reload reaches the pages too.
  const pages = (): WebPages => {
    if (!runtime.pages) throw new Error('the web server runs only with http.enabled');
    return runtime.pages;
  };
  const statusStore = runtime.statusPages;
  const limiter = new FailedLookupLimiter(() => runtime.config.statusPage.failedLookupsPerMinute, runtime.clock);
  // Valid links are limited too: every page view costs a database read and a
  // render, so one link must not let a client keep the server busy.
  const lookups = new LookupLimiter(
    () => runtime.config.statusPage.lookupsPerMinute ?? STATUS_PAGE_LOOKUPS_PER_MINUTE,
    runtime.clock,
  );

  // The headers are set here as well as in onSend: replies to framework
  // errors (bad percent-encoding) do not pass through the hooks.
  const sendPage = (reply: FastifyReply, code: number, html: string) =>
    reply.code(code).headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(html);

  /** The ticket a token opens, or null. Unknown, malformed, revoked and expired tokens all take this same path. */
  const ticketFor = async (token: string): Promise<number | null> => {
    const wellFormed = StatusLinks.wellFormed(token);
    const hash = StatusLinks.hash(token);
    const link = await statusStore.linkByHash(hash);
    const matches = StatusLinks.sameHash(link?.tokenHash ?? NO_MATCH_HASH, hash);
    const expiryMs = runtime.config.statusPage.linkExpiryDaysAfterClose * DAY_MS;
    const expired = link?.closedAt != null && runtime.clock.now().getTime() - link.closedAt > expiryMs;
    const live = link !== null && link.revokedAt === null && !expired;
    return wellFormed && matches && live ? link.ticketId : null;
  };

  const lookUp = async (req: FastifyRequest, reply: FastifyReply, token: string) => {
    const wait = Math.max(limiter.blockedFor(req.ip), lookups.blockedFor(req.ip));
    if (wait > 0) return sendPage(reply.header('retry-after', String(wait)), 429, pages().render('too-many-requests'));
    lookups.record(req.ip);
    if (lookups.blockedFor(req.ip) > 0) {
      runtime.logger.warn(
        { code: 'WEB_LOOKUPS_RATE_LIMITED', client: req.ip, limit: 'all' },
        'too many status-page lookups from one client',
      );
    }
    const ticketId = await ticketFor(token);
    let page: { number: number; count: number } = { number: 1, count: 1 };
    const pick = (heads: Parameters<typeof pickHistoryPage>[0]) => {
      const picked = pickHistoryPage(heads, requestedPage(req));
      page = { number: picked.number, count: picked.count };
      return picked.heads;
    };
    const data = ticketId === null ? null : await statusStore.pageData(ticketId, pick, MESSAGE_READ_CHARS);
    if (data === null) {
      limiter.recordFailure(req.ip);
      if (limiter.blockedFor(req.ip) > 0) {
        runtime.logger.warn(
          { code: 'WEB_LOOKUPS_RATE_LIMITED', client: req.ip, limit: 'failed' },
          'too many failed status-link lookups from one client',
        );
      }
      return sendPage(reply, 404, pages().render('not-found'));
    }
    const mailbox = runtime.mailbox(data.ticket.mailbox);
    const lang = pages().languageFor('status', data.ticket.language ?? mailbox.language);
    const view = statusView({
      data,
      promise: await runtime.sla.promise(data.ticket),
      mailboxAddress: mailbox.address,
      publicUrl: runtime.config.publicUrl,
      locale: lang ?? 'en',
      now: runtime.clock.now(),
      page,
    });
    return sendPage(reply, 200, pages().render('status', view, lang, mailbox.timezone));
  };

  // Anything that is not a route gets the same 404 page. A GET under /t/ is
  // a failed lookup like any other, with the same work done and counted;
  // other methods never open a page, so they reveal nothing.
  const notFound = (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] ?? '';
    const reads = req.method === 'GET' || req.method === 'HEAD';
    if (reads && path.startsWith(TOKEN_PATH)) return lookUp(req, reply, path.slice(TOKEN_PATH.length));
    return sendPage(reply, 404, pages().render('not-found'));
  };

  const app = Fastify({
    logger: false,
    // Only the listed proxies are believed: X-Forwarded-For is read from the
    // right, and the first address that is not one of them is the client.
    // Anything further left was written by the client.
    trustProxy: runtime.config.http.trustProxy,
    routerOptions: { maxParamLength: 256 },
    bodyLimit: 1024,
    requestTimeout: 30_000,
    // Bad percent-encoding and over-long tokens never reach a route; they
    // must still look exactly like any other unknown link.
    frameworkErrors: (_err, req, reply) => notFound(req, reply),
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    return payload;
  });

  app.setNotFoundHandler(notFound);

  app.setErrorHandler((err: Error, _req, reply) => {
    runtime.logger.error({ code: WEB_REQUEST_FAILED, error: err.message }, 'status page request failed');
    return reply.code(500).type('text/plain; charset=utf-8').send('Something went wrong on our side. Please try again later.\n');
  });

  app.get<{ Params: { token: string } }>('/t/:token', (req, reply) => lookUp(req, reply, req.params.token));

  app.get('/healthz', async () => ({ ok: true }));

  if (o.api) registerTicketApi(app, o.api);

  app.get('/readyz', async (_req, reply) => {
    const report = await o.readiness();
    return reply.code(report.ok ? 200 : 503).send(report);
  });

  return app;
}

/**
 * Listens on `http.host:http.port`. `extend` adds
 * routes of other areas (`/metrics`) before the server starts listening.
 */
export async function startWebServer(o: WebServerOptions & { extend?: (app: FastifyInstance) => void }): Promise<WebServer> {
  const { host, port } = o.runtime.config.http;
  const app = buildWebServer(o);
  o.extend?.(app);
  let url: string;
  try {
    url = await app.listen({ host, port });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ListenError(WEB_LISTEN_FAILED, 'http.port', reason, `${host}:${port}`);
  }
  o.runtime.logger.info({ code: 'WEB_LISTENING', url }, 'status page listening');
  return { app, url, close: () => app.close() };
}
