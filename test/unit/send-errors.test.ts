import { describe, expect, it } from 'vitest';
import { classifySendError } from '../../src/send/mailer.js';

describe('classifySendError', () => {
  it('treats a refused login as temporary for the mail, and marks it', () => {
    for (const responseCode of [535, 534, 530, 454]) {
      expect(classifySendError({ code: 'EAUTH', responseCode, response: `${responseCode} no` })).toEqual({
        permanent: false,
        code: `SMTP_${responseCode}`,
        message: `${responseCode} no`,
        auth: true,
      });
    }
    expect(classifySendError({ code: 'EAUTH', message: 'Invalid login' })).toMatchObject({
      permanent: false,
      code: 'EAUTH',
      auth: true,
    });
  });

  it('keeps other 5xx answers permanent and 4xx and network errors temporary', () => {
    expect(classifySendError({ code: 'EENVELOPE', responseCode: 550, response: '550 no such user' })).toEqual({
      permanent: true,
      code: 'SMTP_550',
      message: '550 no such user',
    });
    expect(classifySendError({ code: 'EMESSAGE', responseCode: 451, response: '451 later' })).toMatchObject({
      permanent: false,
      code: 'SMTP_451',
    });
    expect(classifySendError({ code: 'ECONNECTION', message: 'refused' })).toMatchObject({
      permanent: false,
      code: 'ECONNECTION',
    });
  });
});
