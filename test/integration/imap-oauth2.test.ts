// A mailbox that logs in with an OAuth2 access token from a command, as
// Microsoft 365 and Google require: real Dovecot checking the bearer token
// against an introspection endpoint, the real worker and outbox.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { customerMail, startTicketdEnv, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

const GOOD = 'ya29.good-token-for-support';
let introspection: Server;
const seen: string[] = [];
let env: TicketdEnv;

beforeAll(async () => {
  // RFC 7662 token introspection: Dovecot posts the token, we say whose it is.
  introspection = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token') ?? '';
      seen.push(token);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(token === GOOD ? { active: 'true', username: SUPPORT } : { active: 'false' }));
    });
  });
  await new Promise<void>((r) => introspection.listen(0, '127.0.0.1', r));
  const { port } = introspection.address() as AddressInfo;
  env = await startTicketdEnv({ dovecot: { oauth2IntrospectionUrl: `http://127.0.0.1:${port}/introspect` } });
});

afterAll(async () => {
  await env?.stop();
  await new Promise((r) => introspection?.close(r));
});

it('logs in with the token the accessTokenCommand prints and takes the mail', async () => {
  env.writeConfig((c) => (c.mailboxes[0].imap.auth = { user: SUPPORT, accessTokenCommand: ['/bin/echo', GOOD] }));
  await env.dovecot.appendMessage(
    SUPPORT,
    'INBOX',
    customerMail({ subject: 'Via OAuth2', messageId: 'oauth1@customer.example' }),
  );
  const td = await env.open();
  try {
    await td.cycle();
    const [ack] = await env.smtp.waitFor(1);
    expect(ack!.parsed.subject).toContain('Via OAuth2');
    expect(seen).toContain(GOOD);
  } finally {
    await td.close();
  }
});

it('fails the login with a token the server does not accept, and takes nothing', async () => {
  env.writeConfig((c) => (c.mailboxes[0].imap.auth = { user: SUPPORT, accessTokenCommand: ['/bin/echo', 'expired-token'] }));
  await env.dovecot.appendMessage(SUPPORT, 'INBOX', customerMail({ subject: 'Not yet', messageId: 'oauth2@customer.example' }));
  const td = await env.open();
  try {
    await expect(td.imap.runOnce()).rejects.toThrow();
    expect(seen).toContain('expired-token');
    expect(await env.dovecot.listFolder(SUPPORT, 'INBOX')).toHaveLength(1);
  } finally {
    await td.close();
  }
});
