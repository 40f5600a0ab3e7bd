import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCyrus, type CyrusServer } from '../harness/cyrus.js';

const TIMEOUT = { timeout: 60_000 };
const USER = 'support@example.com';

function rawMessage(messageId: string, subject: string): string {
  return [
    'From: Customer <customer@example.org>',
    `To: ${USER}`,
    `Subject: ${subject}`,
    `Message-ID: <${messageId}>`,
    'Date: Mon, 02 Mar 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The printer is on fire.',
    '',
  ].join('\r\n');
}

async function login(server: CyrusServer, user = USER): Promise<ImapFlow> {
  const pass = server.users.find((u) => u.user === user)!.pass;
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user, pass },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

describe('cyrus harness', () => {
  let server: CyrusServer;

  beforeAll(async () => {
    server = await startCyrus();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  }, 60_000);

  it('is Cyrus, with the standard namespace, and answers CREATE of an existing folder with a plain NO', TIMEOUT, async () => {
    const client = await login(server);
    try {
      expect(client.serverInfo?.name ?? '').toMatch(/cyrus/i);
      expect(client.namespace).toMatchObject({ prefix: 'INBOX.', delimiter: '.' });
      for (const cap of ['IDLE', 'MOVE', 'UIDPLUS']) expect(client.capabilities.has(cap)).toBe(true);
      expect((await client.mailboxCreate('Probe')).path).toBe('INBOX.Probe');
      // the behaviour ticketd must cope with: no [ALREADYEXISTS], so imapflow throws
      const again = await client.mailboxCreate('Probe').then(
        () => null,
        (err: { responseText?: string; serverResponseCode?: string }) => err,
      );
      expect(again).not.toBeNull();
      expect(again!.serverResponseCode).toBeUndefined();
      expect(again!.responseText).toMatch(/already exists/i);
    } finally {
      await client.logout();
    }
  });

  it('appends and lists per user, and creates folders on append', TIMEOUT, async () => {
    const uid = await server.appendMessage(USER, 'INBOX', rawMessage('first@example.org', 'First'), ['\\Seen']);
    expect(await server.listFolder(USER, 'INBOX')).toEqual([{ uid, flags: ['\\Seen'], messageId: '<first@example.org>' }]);
    expect(await server.listFolder('sales@example.com', 'INBOX')).toEqual([]);
    await server.appendMessage(USER, 'Archive', rawMessage('a1@example.org', 'A1'));
    await server.appendMessage(USER, 'Archive', rawMessage('a2@example.org', 'A2'));
    expect((await server.listFolder(USER, 'INBOX.Archive')).map((m) => m.messageId)).toEqual([
      '<a1@example.org>',
      '<a2@example.org>',
    ]);
  });

  it('pushes new mail to an IDLE session at once (idled runs)', TIMEOUT, async () => {
    const client = await login(server, 'sales@example.com');
    try {
      await client.mailboxOpen('INBOX');
      const exists = new Promise<number>((resolve) => client.once('exists', (e: { count: number }) => resolve(e.count)));
      const idle = client.idle();
      const sentAt = Date.now();
      await server.appendMessage('sales@example.com', 'INBOX', rawMessage('idle@example.org', 'Idle'));
      expect(await exists).toBe(1);
      // without idled, Cyrus only looks every imapidlepoll (60 s)
      expect(Date.now() - sentAt).toBeLessThan(20_000);
      await client.noop();
      await idle;
    } finally {
      await client.logout();
    }
  });

  it('restarts on the same port with the same mail, closing open sessions', TIMEOUT, async () => {
    const client = await login(server);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const port = server.port;
    let downSeen = false;
    await server.restart(async () => {
      await closed;
      downSeen = await login(server).then(
        async (c) => {
          await c.logout();
          return false;
        },
        () => true,
      );
    });
    expect(downSeen).toBe(true);
    expect(server.port).toBe(port);
    expect((await server.listFolder(USER, 'INBOX')).map((m) => m.messageId)).toEqual(['<first@example.org>']);
  });
});
