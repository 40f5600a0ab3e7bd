import { describe, expect, it } from 'vitest';
import { readStaffReply } from '../../src/classify/staff-reply.js';

const QUOTED =
  '\n\nOn Mon, 2 Dec 2026 at 10:00, ACME Support <support@example.com> wrote:\n> [ACME-7K3QH9] Handed to Hardware\n> The lamp is dead.\n';

describe('reading a staff reply', () => {
  it('keeps only the new text of a plain reply, without quoted history or signature', () => {
    expect(readStaffReply(`Hello Jane,\n\nthe lamp ships today.\n\n-- \nTom\nACME Hardware${QUOTED}`)).toEqual({
      commands: [],
      body: 'Hello Jane,\n\nthe lamp ships today.',
      problems: [],
    });
    expect(readStaffReply('Erledigt.\n\nAm 02.12.2026 um 10:00 schrieb ACME <support@example.com>:\n> alt').body).toBe(
      'Erledigt.',
    );
    expect(readStaffReply('Done.\n\n-----Original Message-----\nFrom: ACME\nold').body).toBe('Done.');
  });

  it('reads #note, with text on its line and below', () => {
    expect(readStaffReply(`#note checked the serial\nIt is 4711.${QUOTED}`)).toEqual({
      commands: [{ kind: 'note' }],
      body: 'checked the serial\n\nIt is 4711.',
      problems: [],
    });
  });

  it('reads #status with an on-hold reason, #resolve, and several commands in a row', () => {
    expect(readStaffReply('#status on-hold waiting for spare part').commands).toEqual([
      { kind: 'status', status: 'on-hold', reason: 'waiting for spare part' },
    ]);
    expect(readStaffReply('#STATUS Pending').commands).toEqual([{ kind: 'status', status: 'pending', reason: null }]);
    expect(readStaffReply('#note x\n#resolve\n').commands).toEqual([{ kind: 'note' }, { kind: 'resolve' }]);
  });

  it('reads #assign with its target and the note from its line and below', () => {
    expect(readStaffReply(`#assign warehouse needs part 77-A\nShip to the 3rd floor.${QUOTED}`).commands).toEqual([
      { kind: 'assign', target: 'warehouse', note: 'needs part 77-A\n\nShip to the 3rd floor.' },
    ]);
  });

  it('reports unknown and malformed commands instead of acting on half of them', () => {
    expect(readStaffReply('#close now').problems).toEqual(['unknown command #close']);
    expect(readStaffReply('#status sleeping').problems).toHaveLength(1);
    expect(readStaffReply('#status open because').problems).toEqual(['#status takes a reason only with on-hold']);
    expect(readStaffReply('#assign').problems).toEqual(['#assign needs a queue or an address']);
  });

  it('treats a # further down as text', () => {
    expect(readStaffReply('Please check\n#status is fine').commands).toEqual([]);
  });
});
