/**
 * Every stable `code` ticketd writes: log events (with the levels they are
 * logged at) and the codes of errors that reach a command line, a caller or a
 * stored row. Operators grep and alert on these, so a code is never renamed
 * or reused. docs/logs.md shows this table; test/unit/event-codes.test.ts
 * checks that every code in src/ is listed here, at the level it is logged
 * at, and that the docs show exactly this.
 */

export type EventLevel = 'info' | 'warn' | 'error' | 'fatal';

export interface LogEvent {
  code: string;
  /** Levels it is logged at; two when the situation decides (e.g. first contact or a real change). */
  levels: readonly EventLevel[];
  meaning: string;
}

export interface ErrorCode {
  code: string;
  meaning: string;
}

export const LOG_EVENTS: readonly LogEvent[] = [
  { code: 'DAEMON_STARTED', levels: ['info'], meaning: 'every worker runs' },
  {
    code: 'DAEMON_STOPPING',
    levels: ['info'],
    meaning: 'SIGTERM or SIGINT received: no new mail is taken, the batch in hand finishes',
  },
  { code: 'DAEMON_STOPPED', levels: ['info'], meaning: 'clean exit (status 0)' },
  { code: 'SIGNAL', levels: ['info'], meaning: 'a signal arrived (`signal`: `SIGTERM`, `SIGINT` or `SIGHUP`)' },
  {
    code: 'DAEMON_CRASHED',
    levels: ['fatal'],
    meaning: 'an error escaped every handler; the process exits 1 and systemd restarts it (nothing committed is lost)',
  },
  {
    code: 'CONFIG_RELOADED',
    levels: ['info'],
    meaning:
      'SIGHUP took the new config and templates; `applied` lists the changed settings now in force, `restartNeeded` those that wait for a restart',
  },
  {
    code: 'CONFIG_RESTART_NEEDED',
    levels: ['warn'],
    meaning: 'one per changed setting a reload cannot apply (`setting`, its JSON path); the running value stays until a restart',
  },
  {
    code: 'CONFIG_RELOAD_REFUSED',
    levels: ['error'],
    meaning: 'SIGHUP refused the new config or templates (`problems`); the old ones stay in force',
  },
  {
    code: 'MSG_TAKEN',
    levels: ['info'],
    meaning:
      'one per message committed: `mailbox`, `via`, `uid`, `uidValidity`, `action` (`taken`, `threaded`, `recorded`, `ignored`, `duplicate`), `reason`, `ref`, `ack`, `batch`, `ms`',
  },
  {
    code: 'MSG_QUARANTINED',
    levels: ['warn'],
    meaning: 'a message was quarantined: the same fields plus `quarantineId` and the `reason`',
  },
  {
    code: 'STAFF_NOTICE_ANSWER_QUARANTINED',
    levels: ['warn'],
    meaning:
      "an answer to a staff notice (`ref`: its ticket) came `from` an address in no queue's `staff`, or from one a trusted MTA found forged; it is quarantined (`quarantineId`), nothing was stored with the ticket or sent",
  },
  {
    code: 'AUTO_REPLY_CAP_REACHED',
    levels: ['warn'],
    meaning:
      'a batch opened tickets without acknowledgement because `limits.autoRepliesPerHour` was reached (`withheld`: how many)',
  },
  {
    code: 'IMAP_CONNECTED',
    levels: ['info'],
    meaning: 'a mailbox session began (`lacks`: which of IDLE, MOVE, UIDPLUS the server does not offer)',
  },
  { code: 'IMAP_LOGGED_OUT', levels: ['info'], meaning: 'a mailbox session ended' },
  {
    code: 'IMAP_BATCH',
    levels: ['info'],
    meaning:
      'a batch was committed and settled: `count`, `remaining` (of the backlog found by this pass), `ms`; `ahead: true` for mail that arrived during a backlog and was taken before the rest of it',
  },
  {
    code: 'IMAP_UIDVALIDITY_CHANGED',
    levels: ['info', 'warn'],
    meaning:
      'first contact with a folder (info, `old: null`) / the server reset UIDVALIDITY (warn); the folder is taken again, deduplicated by Message-ID',
  },
  { code: 'IMAP_SETTLED_OWED', levels: ['info'], meaning: 'messages committed by an earlier run were moved or flagged now' },
  { code: 'IMAP_DISCONNECTED', levels: ['warn'], meaning: 'the session failed or dropped; `retryInMs` until the next attempt' },
  { code: 'IMAP_AUTH_FAILED', levels: ['error'], meaning: 'login refused; retried with backoff' },
  { code: 'IMAP_ERROR', levels: ['warn'], meaning: 'the IMAP client reported a connection error' },
  {
    code: 'IMAP_READ_NOT_RECORDED',
    levels: ['warn'],
    meaning: 'the database refused the note of when the mailbox was read, which `doctor` reads; mail is still taken',
  },
  {
    code: 'PARSE_WORKER_KILLED',
    levels: ['warn'],
    meaning:
      'a parse ran past its deadline (`timeoutMs`); its worker thread was terminated and the message is quarantined as `parse-timeout`',
  },
  {
    code: 'PARSE_WORKER_REPLACED',
    levels: ['info'],
    meaning:
      'a parse thread that took a message of `bytes` (4 MiB or more) was replaced once done, to give back the memory the parse grew',
  },
  {
    code: 'PARSE_WORKER_FAILED',
    levels: ['error'],
    meaning:
      'a parse worker thread failed on its own (`error`); its message is quarantined as `parse-failed` and a new thread takes over',
  },
  { code: 'OUTBOX_SENT', levels: ['info'], meaning: 'the server accepted a queued mail' },
  { code: 'OUTBOX_RETRY', levels: ['warn'], meaning: 'a temporary failure; `nextAttemptAt` from the retry schedule' },
  {
    code: 'OUTBOX_AUTH_FAILED',
    levels: ['error'],
    meaning:
      'the SMTP server refused our login (535, 534, 530, 454); the mail stays queued and is retried on the schedule: fix the credentials',
  },
  {
    code: 'OUTBOX_REJECTED',
    levels: ['error'],
    meaning: 'a 5xx answer; the row is `failed` (`ticketd outbox retry` sends it again)',
  },
  {
    code: 'OUTBOX_GAVE_UP',
    levels: ['error'],
    meaning: 'the retry schedule ran out; the row is `failed` (`ticketd outbox retry` sends it again)',
  },
  {
    code: 'OUTBOX_STOP_TIMEOUT',
    levels: ['warn'],
    meaning:
      'the daemon stopped with sends still waiting for the SMTP server after 10 s; their rows stay queued, so one the server did accept is sent again after the next start',
  },
  {
    code: 'OUTBOX_ERROR',
    levels: ['error'],
    meaning:
      "an outbox claim failed as a whole, or a send's outcome could not be recorded (the lease brings the rows back), or sent mail could not be redacted (the next pass does it)",
  },
  { code: 'INBOUND_LISTENING', levels: ['info'], meaning: 'the LMTP/SMTP listener started' },
  { code: 'INBOUND_CLOSED', levels: ['info'], meaning: 'the LMTP/SMTP listener stopped' },
  { code: 'INBOUND_ACCEPTED', levels: ['info'], meaning: 'a delivered message was committed and answered 250' },
  { code: 'INBOUND_TEMPFAIL', levels: ['warn'], meaning: 'answered 451 before any commit; the MTA retries' },
  { code: 'INBOUND_RCPT_REFUSED', levels: ['info'], meaning: 'answered 550: not one of our addresses' },
  {
    code: 'INBOUND_TOO_LARGE',
    levels: ['info'],
    meaning: 'answered 552: over `inbound.maxMessageBytes`; the MTA bounces it to the sender',
  },
  { code: 'INBOUND_ABORTED', levels: ['info'], meaning: 'the sending MTA went away mid-message; it delivers again later' },
  { code: 'INBOUND_SERVER_ERROR', levels: ['error'], meaning: "the listener's socket failed" },
  {
    code: 'INBOUND_BUSY',
    levels: ['warn'],
    meaning:
      'answered 421 at connect (over `inbound.maxConnections`) or 451 after DATA (over `inbound.maxInFlightBytes`); the MTA retries',
  },
  {
    code: 'INBOUND_TIMEOUT',
    levels: ['warn'],
    meaning: 'a connection did not finish its transaction within `inbound.transactionTimeoutMs`; answered 421 and closed',
  },
  { code: 'SLA_TICK', levels: ['info'], meaning: 'one per SLA pass: tickets evaluated, mails queued, breaches' },
  { code: 'SLA_NOTICE_QUEUED', levels: ['info'], meaning: 'a delay notice to the customer was queued' },
  { code: 'SLA_WARNING_QUEUED', levels: ['info'], meaning: 'a warning to staff was queued' },
  {
    code: 'SLA_NOTICE_WITHDRAWN',
    levels: ['info'],
    meaning:
      'just before sending, a queued delay notice no longer held (answered, paused, closed, deadline moved) and was withdrawn',
  },
  {
    code: 'SLA_WARNING_WITHDRAWN',
    levels: ['info'],
    meaning: 'just before sending, a queued staff warning no longer held and was withdrawn',
  },
  {
    code: 'SLA_CHECK_ERROR',
    levels: ['error'],
    meaning: 'the check before sending an SLA mail could not run (`outboxId`, `error`); the mail is sent as queued',
  },
  { code: 'SLA_BREACHED', levels: ['warn'], meaning: 'a target passed 100%' },
  {
    code: 'SLA_THRESHOLD_SKIPPED',
    levels: ['warn'],
    meaning: 'a threshold was recorded without mail (suppressed requester, no staff address, superseded)',
  },
  { code: 'SLA_TICK_ERROR', levels: ['error'], meaning: "one ticket's evaluation failed; it is retried in 15 minutes" },
  { code: 'SLA_CHANGE_ERROR', levels: ['error'], meaning: 'recomputing deadlines on a change to a ticket failed' },
  { code: 'SLA_SCHEDULER_ERROR', levels: ['error'], meaning: 'the SLA scheduler loop failed' },
  { code: 'WEB_LISTENING', levels: ['info'], meaning: 'the status page server listens' },
  {
    code: 'PG_CONNECTION_LOST',
    levels: ['warn'],
    meaning:
      'a pooled PostgreSQL connection failed while idle (the server restarted, the network dropped it); the pool opens a new one',
  },
  {
    code: 'MAILBOX_LEASE_TAKEN',
    levels: ['info'],
    meaning: "PostgreSQL: this node (`node`) took a mailbox's lease and started watching it",
  },
  {
    code: 'MAILBOX_LEASE_RELEASED',
    levels: ['info'],
    meaning: 'PostgreSQL: this node stopped watching a mailbox (`handedOver`: given back to another node rather than lost)',
  },
  {
    code: 'NODE_HEARTBEAT_FAILED',
    levels: ['warn'],
    meaning:
      'the node could not renew its heartbeat (and, on PostgreSQL, its mailbox leases) (`err`); retried every third of `cluster.leaseMs`; its outbox claims lapse with it',
  },
  {
    code: 'NODE_LEASES_EXPIRING',
    levels: ['error'],
    meaning: 'PostgreSQL: no renewal for most of a lease; the node stopped watching every mailbox before another could take them',
  },
  {
    code: 'NODE_PREDECESSOR_REPLACED',
    levels: ['warn'],
    meaning:
      'the node name was still alive under another run at start: a crashed predecessor (harmless) or a second process with the same `cluster.nodeName` (fix the config)',
  },
  {
    code: 'NODE_NAME_TAKEN',
    levels: ['error'],
    meaning: "another process took over this node's name; this one let go of every mailbox",
  },
  {
    code: 'WEB_LOOKUPS_RATE_LIMITED',
    levels: ['warn'],
    meaning:
      'a client passed `statusPage.failedLookupsPerMinute` (`limit: "failed"`) or `statusPage.lookupsPerMinute` (`limit: "all"`)',
  },
  {
    code: 'WEB_RATING_SAVED',
    levels: ['info'],
    meaning:
      'a requester rated a resolved ticket on its status page (`ticketId`, `score`, `replaced`: it replaced an earlier rating)',
  },
  {
    code: 'WEB_RATING_REFUSED',
    levels: ['warn'],
    meaning:
      'a rating form was posted from another site and nothing was stored (`reason`: `sec-fetch-site …`, `origin` or `token`)',
  },
  {
    code: 'TICKETD_WEB_REQUEST_FAILED',
    levels: ['error'],
    meaning: 'a status page or JSON API request failed inside ticketd (`api: true` for the API); the client got a 500',
  },
  {
    code: 'API_ACTION',
    levels: ['info'],
    meaning:
      'the JSON API changed a ticket: `action` (`note`, `reply`, `assign`, `handoff`, `resolve`), `ref`, and the `tokenName` that asked (the name given at `tokens create`)',
  },
];

export const ERROR_CODES: readonly ErrorCode[] = [
  {
    code: 'TICKETD_CONFIG_INVALID',
    meaning: 'the configuration is invalid: one problem per line, each naming its JSON path (exit 78)',
  },
  { code: 'TICKETD_TEMPLATES_INVALID', meaning: 'a template fails the check: file, line and problem (exit 78)' },
  { code: 'TICKETD_TEMPLATE_RENDER', meaning: 'a template failed while rendering one mail' },
  {
    code: 'TICKETD_ANSWER_UNKNOWN',
    meaning: '`--answer` names no answer of `templates/answers/` (the known names follow); nothing was sent (exit 64)',
  },
  { code: 'TICKETD_DB_TOO_NEW', meaning: 'the database was written by a newer ticketd; this one refuses to open it' },
  {
    code: 'TICKETD_MIGRATION_PENDING',
    meaning: 'the database needs `ticketd migrate` (or `start`) before this command can use it',
  },
  { code: 'TICKETD_SECRET_UNAVAILABLE', meaning: 'a `passFile`, systemd credential or `accessTokenCommand` gave no secret' },
  {
    code: 'TICKETD_DURATION_INVALID',
    meaning: 'a duration does not follow the grammar (`"1h 30m"`: units largest first, each once)',
  },
  { code: 'TICKETD_CALENDAR_INVALID', meaning: 'a business-hours calendar cannot be built (time zone, hours, holidays)' },
  { code: 'TICKETD_CALENDAR_NO_OPENING', meaning: 'a calendar has no opening hour at all, so no deadline could ever be reached' },
  { code: 'TICKETD_IMAP_TIMEOUT', meaning: 'an IMAP command got no answer within `operationTimeoutMs` (or the 5 s NOOP check)' },
  { code: 'TICKETD_IMAP_COMMAND_FAILED', meaning: 'the IMAP server refused a command ticketd needs' },
  { code: 'TICKETD_IMAP_CONNECTION_LOST', meaning: 'the IMAP connection closed under a running command or IDLE' },
  { code: 'TICKETD_IMAP_NOT_CONFIGURED', meaning: 'an IMAP worker was asked for a mailbox without an `imap` section' },
  { code: 'TICKETD_IMAP_WORKER_BUSY', meaning: "a mailbox's IMAP worker was started twice" },
  { code: 'TICKETD_IMAP_WORKER_STOPPED', meaning: 'an IMAP worker was used after it was stopped' },
  {
    code: 'TICKETD_INBOUND_LISTEN_FAILED',
    meaning: 'the LMTP/SMTP listener cannot open `inbound.host`:`inbound.port`; the message names the setting to change',
  },
  {
    code: 'TICKETD_WEB_LISTEN_FAILED',
    meaning: 'the status page cannot open `http.host`:`http.port`; the message names the setting to change',
  },
  {
    code: 'TICKETD_INGEST_FAILED',
    meaning: '`ticketd ingest` could not take a message for another reason (exit 75: the MTA retries)',
  },
  { code: 'TICKETD_TICKET_NOT_FOUND', meaning: 'no ticket has that reference' },
  {
    code: 'TICKETD_STATUS_UNCHANGED',
    meaning:
      'a status change to the status the ticket already has (or on-hold with the same reason): refused, so the customer is not told twice (exit 1)',
  },
  {
    code: 'TICKETD_HANDOFF_NOTE_REQUIRED',
    meaning: 'a handoff, or taking a ticket from its owner, without a note for the receiving side',
  },
  { code: 'TICKETD_ASSIGNMENT_UNCHANGED', meaning: 'an assignment to the queue or person the ticket already has' },
  {
    code: 'TICKETD_QUEUE_UNKNOWN',
    meaning: 'a handoff to a queue that is not configured, while queues are (exit 64; API 422)',
  },
  {
    code: 'TICKETD_NOT_STAFF',
    meaning:
      "a ticket given to something that is not an address, or to no queue's staff while queues list staff (exit 64; API 422)",
  },
  { code: 'TICKETD_API_TOKEN_NAME_TAKEN', meaning: '`tokens create`: a token in force already has that name' },
  { code: 'TICKETD_API_TOKEN_NOT_FOUND', meaning: '`tokens revoke`: no token in force has that name (exit 64)' },
  {
    code: 'TICKETD_API_UNAUTHORIZED',
    meaning: 'JSON API, 401: no `Authorization: Bearer` token, or one that is unknown or revoked',
  },
  { code: 'TICKETD_API_FORBIDDEN', meaning: 'JSON API, 403: a read token on a route that changes a ticket' },
  {
    code: 'TICKETD_API_INVALID_REQUEST',
    meaning:
      'JSON API, 400 (or 413, 415): the query or body does not fit the route: a missing or blank field, not JSON, too large',
  },
  { code: 'TICKETD_API_NOT_FOUND', meaning: 'JSON API, 404: no such route under `/api/v1`' },
  { code: 'TICKETD_API_DISABLED', meaning: 'JSON API, 404: `http.api.enabled` is off' },
  { code: 'TICKETD_QUARANTINE_RELEASED', meaning: '`quarantine discard`: the entry was already released (retried or discarded)' },
  { code: 'TICKETD_USAGE', meaning: 'a wrong call: unknown option or value, missing argument (exit 64)' },
  { code: 'TICKETD_BACKUP_TARGET_EXISTS', meaning: '`ticketd backup FILE`: FILE exists and `--force` was not given' },
  { code: 'TICKETD_BACKUP_SOURCE_MISSING', meaning: '`ticketd backup`: the database file does not exist' },
  { code: 'TICKETD_BACKUP_CORRUPT', meaning: '`ticketd backup`: the copy failed `integrity_check` and was removed' },
  {
    code: 'TICKETD_BACKUP_POSTGRES',
    meaning: '`ticketd backup` on a PostgreSQL database: back it up with `pg_dump` or `pg_basebackup` instead',
  },
  {
    code: 'TICKETD_PACKAGE_ROOT_NOT_FOUND',
    meaning: 'ticketd cannot find its own package folder (templates, migrations): a broken install',
  },
  { code: 'SEND_DEADLINE', meaning: 'recorded on an outbox row: the SMTP server did not answer within `smtp.sendTimeoutMs`' },
  {
    code: 'SEND_FAILED',
    meaning:
      'recorded on an outbox row: sending failed without an SMTP reply or a system error code (otherwise the row holds `SMTP_<reply code>` or the system code, e.g. `ECONNREFUSED`)',
  },
  { code: 'SQLITE_FULL', meaning: '`/readyz` `database.error`: the database or its file system is (nearly) full' },
];
