import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { startSmtpCapture, type SmtpCapture } from '../harness/smtp-capture.js';

const TIMEOUT = { timeout: 60_000 };

function rawMessage(messageId: string, subject: string): string {
  return [
    'From: Customer <customer@example.org>',
    'To: support@example.com',
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

async function folderStatus(server: DovecotServer, user: string, folder: string) {
  const pass = server.users.find((u) => u.user === user)?.pass ?? '';
  const client = new ImapFlow({ host: server.host, port: server.port, secure: false, auth: { user, pass }, logger: false });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const mailbox = await client.mailboxOpen(folder, { readOnly: true });
    const uids = mailbox.exists === 0 ? [] : (await client.fetchAll('1:*', { uid: true })).map((m) => m.uid);
    return { uidValidity: mailbox.uidValidity, exists: mailbox.exists, uids };
  } finally {
    await client.logout().catch(() => client.close());
  }
}

describe('dovecot harness', () => {
  let server: DovecotServer;

  beforeAll(async () => {
    server = await startDovecot();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  }, 60_000);

  it('appends a message over IMAP and lists it back', TIMEOUT, async () => {
    const uid = await server.appendMessage('support@example.com', 'INBOX', rawMessage('first@example.org', 'First'), ['\\Seen']);
    expect(uid).toBe(1);

    const listed = await server.listFolder('support@example.com', 'INBOX');
    expect(listed).toEqual([{ uid: 1, flags: ['\\Seen'], messageId: '<first@example.org>' }]);

    // each user has a separate mailbox
    expect(await server.listFolder('sales@example.com', 'INBOX')).toEqual([]);
  });

  it('creates missing folders on append', TIMEOUT, async () => {
    const uid = await server.appendMessage(
      'sales@example.com',
      'Archive',
      Buffer.from(rawMessage('archived@example.org', 'Old')),
    );
    const listed = await server.listFolder('sales@example.com', 'Archive');
    expect(listed).toEqual([{ uid, flags: [], messageId: '<archived@example.org>' }]);
  });

  it('delivers straight into the Maildir and Dovecot picks it up', TIMEOUT, async () => {
    await server.deliverToMaildir('support@example.com', rawMessage('dropped@example.org', 'Dropped'));
    const listed = await server.listFolder('support@example.com', 'INBOX');
    expect(listed.map((m) => m.messageId)).toEqual(['<first@example.org>', '<dropped@example.org>']);
    expect(listed[1]?.uid).toBe(2);
  });

  it('resets UIDVALIDITY while keeping the messages', TIMEOUT, async () => {
    const before = await folderStatus(server, 'support@example.com', 'INBOX');
    expect(before.exists).toBe(2);

    // an open session must not keep the old indexes alive
    const idle = new ImapFlow({
      host: server.host,
      port: server.port,
      secure: false,
      auth: { user: 'support@example.com', pass: 'secret' },
      logger: false,
    });
    idle.on('error', () => undefined);
    await idle.connect();
    await idle.mailboxOpen('INBOX');
    try {
      await server.resetUidValidity('support@example.com', 'INBOX');
    } finally {
      await idle.logout().catch(() => idle.close());
    }

    const after = await folderStatus(server, 'support@example.com', 'INBOX');
    expect(after.uidValidity).not.toBe(before.uidValidity);
    expect(after.exists).toBe(2);
    expect(after.uids).toEqual([1, 2]);
    const listed = await server.listFolder('support@example.com', 'INBOX');
    expect(listed.map((m) => m.messageId).sort()).toEqual(['<dropped@example.org>', '<first@example.org>']);
  });

  it('resets UIDVALIDITY of a non-INBOX folder', TIMEOUT, async () => {
    const before = await folderStatus(server, 'sales@example.com', 'Archive');
    await server.resetUidValidity('sales@example.com', 'Archive');
    const after = await folderStatus(server, 'sales@example.com', 'Archive');
    expect(after.uidValidity).not.toBe(before.uidValidity);
    expect(after.exists).toBe(1);
  });

  it('rejects unknown users', TIMEOUT, async () => {
    await expect(server.listFolder('nobody@example.com', 'INBOX')).rejects.toThrow(/unknown mail user/);
  });

  it('runs isolated servers side by side and cleans up on stop', TIMEOUT, async () => {
    const [a, b] = await Promise.all([
      startDovecot({ users: [{ user: 'a@example.net', pass: 'pa' }] }),
      startDovecot({ users: [{ user: 'b@example.net', pass: 'pb' }] }),
    ]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.port).not.toBe(server.port);
      await a.appendMessage('a@example.net', 'INBOX', rawMessage('only-a@example.org', 'A'));
      expect(await a.listFolder('a@example.net', 'INBOX')).toHaveLength(1);
      expect(await b.listFolder('b@example.net', 'INBOX')).toHaveLength(0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    const { existsSync } = await import('node:fs');
    expect(existsSync(a.dir)).toBe(false);
    await expect(a.listFolder('a@example.net', 'INBOX')).rejects.toThrow();
  });
});

describe('smtp capture', () => {
  let smtp: SmtpCapture;

  beforeAll(async () => {
    smtp = await startSmtpCapture();
  });

  afterAll(async () => {
    await smtp?.stop();
  });

  const transport = () =>
    nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: false,
      ignoreTLS: true,
      connectionTimeout: 5_000,
      greetingTimeout: 5_000,
    });

  it('captures a mail sent with nodemailer', TIMEOUT, async () => {
    smtp.clear();
    await transport().sendMail({
      from: 'support@example.com',
      to: ['customer@example.org', 'cc@example.org'],
      subject: 'Ticket #42 received',
      text: 'We are on it.',
      html: '<p>We are on it.</p>',
      messageId: '<ack-42@example.com>',
      inReplyTo: '<question@example.org>',
      references: ['<question@example.org>'],
    });
    const [captured] = await smtp.waitFor(1);
    expect(captured?.envelope).toEqual({ from: 'support@example.com', to: ['customer@example.org', 'cc@example.org'] });
    expect(captured?.parsed.subject).toBe('Ticket #42 received');
    expect(captured?.parsed.messageId).toBe('<ack-42@example.com>');
    expect(captured?.parsed.inReplyTo).toBe('<question@example.org>');
    expect(captured?.parsed.references).toBe('<question@example.org>');
    expect(captured?.parsed.text?.trim()).toBe('We are on it.');
    expect(captured?.parsed.html).toContain('<p>We are on it.</p>');
    expect(captured?.parsed.headers.get('subject')).toBe('Ticket #42 received');
    expect(captured?.raw.toString()).toContain('Subject: Ticket #42 received');
  });

  it('waitFor rejects with what was captured', TIMEOUT, async () => {
    await expect(smtp.waitFor(5, 300)).rejects.toThrow(/expected at least 5 message\(s\).*got 1[\s\S]*Ticket #42 received/);
  });

  it('fails deliveries with the configured code', TIMEOUT, async () => {
    smtp.clear();
    smtp.setFailureMode({ code: 451 });
    await expect(
      transport().sendMail({ from: 'support@example.com', to: 'customer@example.org', subject: 'x', text: 'x' }),
    ).rejects.toMatchObject({ responseCode: 451 });

    smtp.setFailureMode({ code: 550, at: 'rcpt', message: 'No such user' });
    await expect(
      transport().sendMail({ from: 'support@example.com', to: 'customer@example.org', subject: 'x', text: 'x' }),
    ).rejects.toMatchObject({ responseCode: 550 });
    expect(smtp.messages).toHaveLength(0);

    smtp.setFailureMode(null);
    await transport().sendMail({ from: 'support@example.com', to: 'customer@example.org', subject: 'ok', text: 'x' });
    expect(smtp.messages).toHaveLength(1);
  });

  it('can be taken down and brought back on the same port', TIMEOUT, async () => {
    smtp.clear();
    const port = smtp.port;
    await smtp.close();
    await expect(
      transport().sendMail({ from: 'support@example.com', to: 'customer@example.org', subject: 'down', text: 'x' }),
    ).rejects.toThrow(/ECONNREFUSED/);

    await smtp.restart();
    expect(smtp.port).toBe(port);
    await transport().sendMail({ from: 'support@example.com', to: 'customer@example.org', subject: 'back', text: 'x' });
    const captured = await smtp.waitFor(1);
    expect(captured.map((m) => m.parsed.subject)).toEqual(['back']);
  });

  it('enforces configured credentials', TIMEOUT, async () => {
    const secured = await startSmtpCapture({ auth: { user: 'relay', pass: 'hunter2' } });
    try {
      const send = (pass: string) =>
        nodemailer
          .createTransport({
            host: secured.host,
            port: secured.port,
            secure: false,
            ignoreTLS: true,
            auth: { user: 'relay', pass },
          })
          .sendMail({ from: 'support@example.com', to: 'customer@example.org', subject: 'auth', text: 'x' });
      await expect(send('wrong')).rejects.toMatchObject({ responseCode: 535 });
      await send('hunter2');
      const [captured] = await secured.waitFor(1);
      expect(captured?.authUser).toBe('relay');
    } finally {
      await secured.stop();
    }
  });
});

describe('dovecot harness options', () => {
  it('hides IDLE, MOVE and UIDPLUS when asked, and imapflow then goes without them', TIMEOUT, async () => {
    const plain = await startDovecot({ withoutCapabilities: ['IDLE', 'MOVE', 'UIDPLUS'] });
    const full = await startDovecot();
    try {
      const caps = await plain.capabilities();
      for (const cap of ['IDLE', 'MOVE', 'UIDPLUS']) expect(caps).not.toContain(cap);
      expect(caps).toContain('IMAP4rev1');
      const fullCaps = await full.capabilities();
      for (const cap of ['IDLE', 'MOVE', 'UIDPLUS']) expect(fullCaps).toContain(cap);
      expect(caps.length).toBe(fullCaps.length - 3);

      const client = new ImapFlow({
        host: plain.host,
        port: plain.port,
        secure: false,
        auth: { user: 'support@example.com', pass: 'secret' },
        logger: false,
      });
      client.on('error', () => undefined);
      await client.connect();
      try {
        expect(['IDLE', 'MOVE', 'UIDPLUS'].filter((c) => client.capabilities.has(c))).toEqual([]);
      } finally {
        await client.logout();
      }
    } finally {
      await Promise.all([plain.stop(), full.stop()]);
    }
  });

  it('restarts on the same port with the same mail', TIMEOUT, async () => {
    const server = await startDovecot();
    try {
      await server.appendMessage('support@example.com', 'INBOX', rawMessage('kept@example.org', 'Kept'));
      const port = server.port;
      let refused = false;
      await server.restart(async () => {
        refused = await folderStatus(server, 'support@example.com', 'INBOX').then(
          () => false,
          () => true,
        );
      });
      expect(refused).toBe(true);
      expect(server.port).toBe(port);
      expect((await server.listFolder('support@example.com', 'INBOX')).map((m) => m.messageId)).toEqual(['<kept@example.org>']);
    } finally {
      await server.stop();
    }
  });
});
