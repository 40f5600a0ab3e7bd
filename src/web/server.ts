import Tokens from '@fastify/csrf';
import formBody from '@fastify/formbody';
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
import { readRating } from '../store/ratings.js';

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

/** The one page with a form (a resolved ticket's, with its rating form) may submit it to this site, and nowhere else. */
const FORM_PAGE_CSP = SECURITY_HEADERS['content-security-policy']!.replace("form-action 'none'", "form-action 'self'");

/** The security headers, keeping a stricter or page-specific one a handler set (the form page's CSP). */
function securityHeaders(reply: FastifyReply): Record<string, string> {
  return Object.fromEntries(Object.entries(SECURITY_HEADERS).filter(([name]) => !reply.hasHeader(name)));
}

const DAY_MS = 86_400_000;
const TOKEN_PATH = '/t/';
/** Compared against when no stored link matched, so a miss costs what a hit costs. */
const NO_MATCH_HASH = '0'.repeat(64);
/** A rating's form body: a score, a comment of up to 2,000 characters (up to 4 bytes each, percent-encoded) and the token. */
const RATING_BODY_BYTES = 32 * 1024;

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
  /** The site key's holder: the rating form's tokens are made with its form secret. */
  readonly links: Pick<StatusLinks, 'formSecret'>;
  readonly clock: Clock;
  readonly logger: Logger;
  mailbox(name: string): Pick<MailboxConfig, 'address' | 'language' | 'timezone'>;
}

export interface WebServerOptions {
  site: StatusSite;
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

function isFormBody(req: FastifyRequest): boolean {
  return /^application\/x-www-form-urlencoded\s*(;|$)/i.test(req.headers['content-type'] ?? '');
}

/** `?page=N` of a status URL; null (the newest page) when absent or not a page number. */
function requestedPage(req: FastifyRequest): number | null {
  const value = (req.query as Record<string, unknown> | undefined)?.page;
  return typeof value === 'string' && /^[1-9]\d{0,5}$/.test(value) ? Number(value) : null;
}

/**
 * `?score=N` of a status URL, the score a rating link in our mail chose; null
 * when absent or not 1 to 5. It only checks that score in the form: a GET
 * stores nothing, the customer sends the form to confirm.
 */
function requestedScore(req: FastifyRequest): number | null {
  const value = (req.query as Record<string, unknown> | undefined)?.score;
  return typeof value === 'string' && /^[1-5]$/.test(value) ? Number(value) : null;
}

/**
 * The customer-facing HTTP server: `/t/<token>` (the status page; a POST
 * there is its rating form), `/healthz`, `/readyz`, and the JSON API when
 * `api` is given (it answers only while `http.api.enabled`). Request logging stays off, because every status
 * URL carries a secret.
 */
export function buildWebServer(o: WebServerOptions): FastifyInstance {
  const { site } = o;
  // Read per request, so a SIGHUP reload reaches the pages too.
  const pages = (): WebPages => {
    if (!site.pages) throw new Error('the web server runs only with http.enabled');
    return site.pages;
  };
  const statusStore = site.statusPages;
  const limiter = new FailedLookupLimiter(() => site.config.statusPage.failedLookupsPerMinute, site.clock);
  // Valid links are limited too: every page view costs a database read and a
  // render, so one link must not let a client keep the server busy.
  const lookups = new LookupLimiter(() => site.config.statusPage.lookupsPerMinute ?? STATUS_PAGE_LOOKUPS_PER_MINUTE, site.clock);

  // The headers are set here as well as in onSend: replies to framework
  // errors (bad percent-encoding) do not pass through the hooks.
  const sendPage = (reply: FastifyReply, code: number, html: string) =>
    reply.code(code).headers(securityHeaders(reply)).type('text/html; charset=utf-8').send(html);

  /** The ticket a token opens, or null. Unknown, malformed, revoked and expired tokens all take this same path. */
  const ticketFor = async (token: string): Promise<number | null> => {
    const wellFormed = StatusLinks.wellFormed(token);
    const hash = StatusLinks.hash(token);
    const link = await statusStore.linkByHash(hash);
    const matches = StatusLinks.sameHash(link?.tokenHash ?? NO_MATCH_HASH, hash);
    const expiryMs = site.config.statusPage.linkExpiryDaysAfterClose * DAY_MS;
    const expired = link?.closedAt != null && site.clock.now().getTime() - link.closedAt > expiryMs;
    const live = link !== null && link.revokedAt === null && !expired;
    return wellFormed && matches && live ? link.ticketId : null;
  };

  /** Counts a request against the client's limits; false (with the 429 sent) when it is over one. */
  const admit = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const wait = Math.max(limiter.blockedFor(req.ip), lookups.blockedFor(req.ip));
    if (wait > 0) {
      void sendPage(reply.header('retry-after', String(wait)), 429, pages().render('too-many-requests'));
      return false;
    }
    lookups.record(req.ip);
    if (lookups.blockedFor(req.ip) > 0) {
      site.logger.warn(
        { code: 'WEB_LOOKUPS_RATE_LIMITED', client: req.ip, limit: 'all' },
        'too many status-page lookups from one client',
      );
    }
    return true;
  };

  const failedLookup = (req: FastifyRequest, reply: FastifyReply) => {
    limiter.recordFailure(req.ip);
    if (limiter.blockedFor(req.ip) > 0) {
      site.logger.warn(
        { code: 'WEB_LOOKUPS_RATE_LIMITED', client: req.ip, limit: 'failed' },
        'too many failed status-link lookups from one client',
      );
    }
    return sendPage(reply, 404, pages().render('not-found'));
  };

  // The rating form's CSRF tokens (@fastify/csrf): made with a secret derived
  // from the site key and bound to the status link, so a token from one
  // ticket's page is worth nothing on another's.
  // Its typings pick the overload without userInfo for a plain call.
  const csrf = Tokens({ userInfo: true }) as unknown as Tokens.TokensUserinfo;
  const formToken = (token: string) => csrf.create(site.links.formSecret(), StatusLinks.hash(token));
  const publicOrigin = () => new URL(site.config.publicUrl).origin;

  /**
   * Why a form submission is refused as cross-site, or null when it came
   * from the page itself: the browser's Sec-Fetch-Site and Origin, where it
   * sends them, and always the token the page put in the form. Our pages
   * send no referrer, so a browser posts their form with `Origin: null`;
   * Sec-Fetch-Site, which no page can set, tells where it came from then.
   */
  const crossSite = (req: FastifyRequest, token: string): string | null => {
    const fetchSite = req.headers['sec-fetch-site'];
    if (fetchSite !== undefined && fetchSite !== 'same-origin') return `sec-fetch-site ${String(fetchSite)}`;
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null' && origin !== publicOrigin()) return 'origin';
    const sent = (req.body as Record<string, unknown> | undefined)?.csrf;
    if (typeof sent !== 'string' || !csrf.verify(site.links.formSecret(), sent, StatusLinks.hash(token))) return 'token';
    return null;
  };

  const rate = async (req: FastifyRequest, reply: FastifyReply, token: string) => {
    if (!admit(req, reply)) return reply;
    const ticketId = await ticketFor(token);
    if (ticketId === null) return failedLookup(req, reply);
    const refused = crossSite(req, token);
    if (refused !== null) {
      site.logger.warn({ code: 'WEB_RATING_REFUSED', client: req.ip, reason: refused }, 'rating refused as cross-site');
      return reply
        .code(403)
        .headers(SECURITY_HEADERS)
        .type('text/plain; charset=utf-8')
        .send('This form can only be sent from your status page. Please open the link from our email again.\n');
    }
    const body = req.body as Record<string, unknown>;
    const input = readRating(body.score, body.comment);
    if (!input.ok) {
      return reply
        .code(400)
        .headers(SECURITY_HEADERS)
        .type('text/plain; charset=utf-8')
        .send('Please choose a rating from 1 to 5.\n');
    }
    const outcome = await statusStore.rate(ticketId, input, site.clock.now().getTime());
    if (outcome.ok) {
      site.logger.info(
        { code: 'WEB_RATING_SAVED', ticketId, score: outcome.rating.score, replaced: outcome.replaced },
        'rating saved',
      );
    }
    // Back to the page (POST, redirect, GET): it shows the rating, or why there is no form any more.
    return reply.code(303).headers(SECURITY_HEADERS).header('location', `${token}#rate`).send();
  };

  const lookUp = async (req: FastifyRequest, reply: FastifyReply, token: string) => {
    if (!admit(req, reply)) return reply;
    const ticketId = await ticketFor(token);
    let page: { number: number; count: number } = { number: 1, count: 1 };
    const pick = (heads: Parameters<typeof pickHistoryPage>[0]) => {
      const picked = pickHistoryPage(heads, requestedPage(req));
      page = { number: picked.number, count: picked.count };
      return picked.heads;
    };
    const data = ticketId === null ? null : await statusStore.pageData(ticketId, pick, MESSAGE_READ_CHARS);
    if (data === null) return failedLookup(req, reply);
    const mailbox = site.mailbox(data.ticket.mailbox);
    const lang = pages().languageFor('status', data.ticket.language ?? mailbox.language);
    const view = statusView({
      data,
      promise: await site.sla.promise(data.ticket),
      mailboxAddress: mailbox.address,
      publicUrl: site.config.publicUrl,
      locale: lang ?? 'en',
      now: site.clock.now(),
      page,
      formToken: formToken(token),
      chosenScore: requestedScore(req),
    });
    if (view.rating) reply.header('content-security-policy', FORM_PAGE_CSP);
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
    trustProxy: site.config.http.trustProxy,
    routerOptions: { maxParamLength: 256 },
    bodyLimit: 1024,
    requestTimeout: 30_000,
    // Bad percent-encoding and over-long tokens never reach a route; they
    // must still look exactly like any other unknown link.
    frameworkErrors: (_err, req, reply) => notFound(req, reply),
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.headers(securityHeaders(reply));
    return payload;
  });

  app.setNotFoundHandler(notFound);

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    // The client's own mistake (a form body over the limit, one that does not parse): said as such, not logged.
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).type('text/plain; charset=utf-8').send('The request could not be read.\n');
    }
    site.logger.error({ code: WEB_REQUEST_FAILED, error: err.message }, 'status page request failed');
    return reply.code(500).type('text/plain; charset=utf-8').send('Something went wrong on our side. Please try again later.\n');
  });

  app.get<{ Params: { token: string } }>('/t/:token', (req, reply) => lookUp(req, reply, req.params.token));

  // The rating form posts here; @fastify/formbody parses its body.
  void app.register(formBody);
  app.post<{ Params: { token: string } }>(
    '/t/:token',
    {
      bodyLimit: RATING_BODY_BYTES,
      // Only the form is answered here, and before its body is read: any
      // other POST is what every other method gets.
      onRequest: async (req, reply) => {
        if (!isFormBody(req)) await notFound(req, reply);
      },
    },
    (req, reply) => rate(req, reply, req.params.token),
  );

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
  const { host, port } = o.site.config.http;
  const app = buildWebServer(o);
  o.extend?.(app);
  let url: string;
  try {
    url = await app.listen({ host, port });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ListenError(WEB_LISTEN_FAILED, 'http.port', reason, `${host}:${port}`);
  }
  o.site.logger.info({ code: 'WEB_LISTENING', url }, 'status page listening');
  return { app, url, close: () => app.close() };
}
