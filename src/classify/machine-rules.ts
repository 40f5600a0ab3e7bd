// What marks mail as written by a machine, kept as data. No maintained Node
// library classifies bounces, feedback reports and auto-replies (the npm
// packages for it are unmaintained, need a native build, or read only the
// body text), so the rules live here, each with where it comes from. A new
// format is a new row, checked by a fixture in test/fixtures/mail and by the
// corpus test (test/corpus).

/**
 * Local parts that only mail systems send from. Any mail from them is
 * machine-made. Sources: RFC 5321 section 4.5.1 (postmaster), RFC 3834
 * section 2 (MAILER-DAEMON), sisimai's set-of-emails (post_master@ of
 * Verizon/vtext and Apache James gateways, Mail.Delivery.System@).
 */
export const SYSTEM_LOCAL_PART = /^(?:mailer[-_.]?daemon|mail[-_.]?daemon|post[-_.]?master|mail\.delivery\.system)$/i;

/**
 * Local parts of addresses that take no replies, e.g. noreply@, no-reply-aws@,
 * donotreply@. Source: Forward Email's reserved-email-addresses-list
 * (no-reply-list.json), with suffixes as large senders use them. Alone this
 * is weak: web forms send a customer's request from noreply@ with the
 * customer in Reply-To, so it counts only together with another sign.
 */
export const NOREPLY_LOCAL_PART =
  /^(?:no[-_.]?reply|no[-_.]?replies|do[-_.]?not[-_.]?reply|do[-_.]?not[-_.]?respond|dont[-_.]?reply|nobody)(?:[-_.+][^@]*)?$/i;

/**
 * Subjects of the bounces MTAs send without a machine-readable report, read
 * only on mail from a system sender or a noreply address. Sources: sisimai's
 * set-of-emails, one phrase per MTA or provider as noted.
 */
export const BOUNCE_SUBJECTS: readonly { pattern: RegExp; source: string }[] = [
  { pattern: /^\s*undelivered mail returned to sender/i, source: 'Postfix' },
  { pattern: /^\s*undeliver(?:ed|able)\b/i, source: 'Exchange, Outlook, qmail' },
  { pattern: /^\s*(?:mail )?delivery status notification\b/i, source: 'Gmail, OpenSMTPD, Zoho, Exchange' },
  { pattern: /^\s*delivery status\s*$/i, source: 'McAfee' },
  { pattern: /^\s*(?:mail|message) delivery (?:failed|failure|has failed)/i, source: 'Exim, MailFoundry, Exchange' },
  { pattern: /mail delivery failed\s*:/i, source: 'Exim with a host prefix' },
  { pattern: /^\s*(?:\[postmaster\]\s*)?e?mail delivery failure/i, source: 'Mimecast' },
  { pattern: /^\s*returned mail\b/i, source: 'Sendmail' },
  { pattern: /^\s*(?:permanent )?deliver(?:y)? failure|^\s*fail(?:ed|ure) delivery/i, source: 'various gateways' },
  { pattern: /^\s*failure notice/i, source: 'qmail' },
  { pattern: /^\s*non[- ]?delivery/i, source: 'Exchange' },
  {
    pattern: /^\s*delayed mail\b|^\s*warning: message .* delayed|^\s*warning--could not send mail/i,
    source: 'Postfix, Exim, Sendmail delay notices',
  },
  { pattern: /^\s*mail failure\b|mail failure\.\s*$/i, source: 'Exim, mail.ru' },
  {
    pattern: /^\s*mail could not be delivered|^\s*there was an error sending your mail/i,
    source: 'Trend Micro, hosted gateways',
  },
  { pattern: /^\s*mail system error - returned mail/i, source: 'au/KDDI ezweb carrier gateway' },
  { pattern: /returning (?:message )?to sender/i, source: 'Exim, Sendmail' },
  { pattern: /^\s*e?mail bounce notification/i, source: 'hosting providers' },
  { pattern: /メールエラー通知|メッセージを配信できません|配信不能/, source: 'KDDI, Trend Micro (Japanese)' },
  { pattern: /ваше сообщение не доставлено/i, source: 'mail.ru, Yandex (Russian)' },
  { pattern: /unzustellbar|nicht zustellbar|non remis|no se puede entregar/i, source: 'Exchange (German, French, Spanish)' },
];

/**
 * Headers only machines put on mail, with the reason they stand for.
 * Sources: RFC 3834 section 5 (Auto-Submitted); Microsoft's
 * X-Auto-Response-Suppress and X-MS-Exchange-Inbox-Rules-Loop (set on mail
 * an inbox rule generated); X-Autoreply/X-Autorespond (common vacation
 * programs); fml's X-MLServer and X-ML-Name (Japanese list server, whose
 * loop alerts carry no List-* headers); Amazon SNS's x-amz-sns-message-id
 * (SES bounce and complaint notifications).
 */
export const MACHINE_HEADERS: readonly { header: string; reason: string }[] = [
  { header: 'x-ms-exchange-inbox-rules-loop', reason: 'inbox-rule' },
  { header: 'x-mlserver', reason: 'list-mail' },
  { header: 'x-ml-name', reason: 'list-mail' },
  { header: 'x-amz-sns-message-id', reason: 'provider-notification' },
];

/**
 * Feedback reports (complaints) in formats older than RFC 5965's
 * multipart/report; report-type=feedback-report. Source: sisimai's ARF
 * samples (Hotmail's JMRP reports from staff@hotmail.com).
 */
export const FEEDBACK_SUBJECT = /^\s*complaint about message from\b/i;
