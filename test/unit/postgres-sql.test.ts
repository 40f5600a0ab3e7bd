import { describe, expect, it } from 'vitest';
import { bindParams, toPostgresSql } from '../../src/store/postgres-sql.js';

describe('toPostgresSql', () => {
  it('numbers named parameters in order of first use and reuses the number of a repeated one', () => {
    const s = toPostgresSql('SELECT * FROM t WHERE a = @a AND (b = @b OR a = @a) LIMIT @limit');
    expect(s.text).toBe('SELECT * FROM t WHERE a = $1 AND (b = $2 OR a = $1) LIMIT $3');
    expect(s.names).toEqual(['a', 'b', 'limit']);
    expect(s.positional).toBe(0);
  });

  it('numbers positional parameters', () => {
    const s = toPostgresSql('UPDATE t SET a = ? WHERE id = ? AND b = ?');
    expect(s.text).toBe('UPDATE t SET a = $1 WHERE id = $2 AND b = $3');
    expect(s.names).toBeNull();
    expect(s.positional).toBe(3);
  });

  it('quotes camelCase aliases so PostgreSQL keeps their case, and leaves type names and lower-case aliases alone', () => {
    const s = toPostgresSql('SELECT message_row AS messageRow, CAST(x AS INTEGER) AS n, y as lastUid, z AS "from" FROM t');
    expect(s.text).toBe('SELECT message_row AS "messageRow", CAST(x AS INTEGER) AS n, y as "lastUid", z AS "from" FROM t');
  });

  it('leaves strings, quoted names and comments untouched', () => {
    const sql = `SELECT 'a ? @b it''s' AS x, "odd?@name" FROM t -- why? @c AS fooBar\nWHERE y = @y /* ? AS barBaz */`;
    const s = toPostgresSql(sql);
    expect(s.text).toBe(`SELECT 'a ? @b it''s' AS x, "odd?@name" FROM t -- why? @c AS fooBar\nWHERE y = $1 /* ? AS barBaz */`);
    expect(s.names).toEqual(['y']);
  });

  it('refuses a query that mixes both kinds of parameters', () => {
    expect(() => toPostgresSql('SELECT 1 WHERE a = @a AND b = ?')).toThrow(/mixes/);
  });
});

describe('bindParams', () => {
  it('orders named values by their numbers and refuses a missing one', () => {
    const s = toPostgresSql('SELECT @b, @a, @b');
    expect(bindParams(s, 'q', { a: 1, b: null, extra: 3 })).toEqual([null, 1]);
    expect(() => bindParams(s, 'q', { a: 1 })).toThrow(/missing parameter @b/);
    expect(() => bindParams(s, 'q', [1, 2])).toThrow(/named parameters/);
  });

  it('checks the count of positional values', () => {
    const s = toPostgresSql('SELECT ?, ?');
    expect(bindParams(s, 'q', [1, 'x'])).toEqual([1, 'x']);
    expect(() => bindParams(s, 'q', [1])).toThrow(/takes 2 parameters, got 1/);
    expect(bindParams(toPostgresSql('SELECT 1'), 'q', undefined)).toEqual([]);
  });
});
