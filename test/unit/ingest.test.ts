import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readPipedMessage, stripEnvelopeLine } from '../../src/sources/pipe/ingest.js';

const MESSAGE = 'From: Jane <jane@customer.example>\nSubject: Hi\n\nBody\n';

describe('stripEnvelopeLine', () => {
  it('drops the mbox envelope line local(8) puts in front of a piped message', () => {
    const piped = Buffer.from(`From jane@customer.example  Tue Jul  1 09:00:00 2025\n${MESSAGE}`);
    expect(stripEnvelopeLine(piped).toString()).toBe(MESSAGE);
  });

  it('leaves a message that starts with a From: header alone, also the obsolete "From :" form', () => {
    expect(stripEnvelopeLine(Buffer.from(MESSAGE)).toString()).toBe(MESSAGE);
    const obsolete = `From : jane@customer.example\nSubject: Hi\n\nBody\n`;
    expect(stripEnvelopeLine(Buffer.from(obsolete)).toString()).toBe(obsolete);
  });

  it('leaves a message that starts with any other header alone', () => {
    const raw = `Return-Path: <jane@customer.example>\r\n${MESSAGE}`;
    expect(stripEnvelopeLine(Buffer.from(raw)).toString()).toBe(raw);
  });

  it('keeps CRLF line ends of the rest', () => {
    const piped = Buffer.from('From MAILER-DAEMON Tue Jul  1 09:00:00 2025\r\nSubject: x\r\n\r\nbody\r\n');
    expect(stripEnvelopeLine(piped).toString()).toBe('Subject: x\r\n\r\nbody\r\n');
  });

  it('makes an input that is only an envelope line empty, which the pipeline quarantines', () => {
    expect(stripEnvelopeLine(Buffer.from('From nobody Tue Jul  1 09:00:00 2025')).length).toBe(0);
  });
});

describe('readPipedMessage', () => {
  it('reads every chunk of the stream, also beyond any message size limit', async () => {
    const body = 'x'.repeat(3 * 1024 * 1024);
    const chunks = [`From jane Tue Jul  1 09:00:00 2025\n`, 'Subject: big\n\n', body.slice(0, 1_000_000), body.slice(1_000_000)];
    const raw = await readPipedMessage(Readable.from(chunks.map((c) => Buffer.from(c))));
    expect(raw.toString()).toBe(`Subject: big\n\n${body}`);
  });
});
