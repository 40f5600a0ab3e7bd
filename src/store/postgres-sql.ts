// The named queries are written once, in SQL SQLite and PostgreSQL both
// accept; what differs only in spelling is translated here instead of being
// written twice:
// - parameters: `@name` (named) and `?` (positional) become `$1`, `$2`, ...;
// - column aliases in camelCase (`AS ticketId`) are double-quoted, because
//   PostgreSQL folds unquoted names to lower case and the store reads rows by
//   the alias as SQLite returns it.
// Strings, quoted identifiers and comments are copied untouched. What differs
// in meaning (SQLite's two-argument max(), say) is an override of the name in
// `src/store/postgres/`, not a translation.

export interface PostgresStatement {
  /** The SQL with `$n` placeholders. */
  text: string;
  /** For `@name` SQL, the parameter name of each `$n` in order; null for `?` SQL or none. */
  names: string[] | null;
  /** How many `?` the SQL had; 0 for `@name` SQL. */
  positional: number;
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

export function toPostgresSql(sql: string): PostgresStatement {
  let out = '';
  const names: string[] = [];
  let positional = 0;
  let lastWord = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === "'" || c === '"') {
      const end = closingQuote(sql, i, c);
      out += sql.slice(i, end);
      i = end;
      lastWord = '';
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '@' && next !== undefined && IDENT_START.test(next)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(sql[j]!)) j++;
      const name = sql.slice(i + 1, j);
      let index = names.indexOf(name);
      if (index === -1) index = names.push(name) - 1;
      out += `$${index + 1}`;
      i = j;
      lastWord = '';
    } else if (c === '?') {
      positional++;
      out += `$${positional}`;
      i++;
      lastWord = '';
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(sql[j]!)) j++;
      const word = sql.slice(i, j);
      const isAlias = lastWord.toUpperCase() === 'AS' && /[a-z]/.test(word) && /[A-Z]/.test(word);
      out += isAlias ? `"${word}"` : word;
      lastWord = word;
      i = j;
    } else {
      out += c;
      if (!/\s/.test(c)) lastWord = '';
      i++;
    }
  }
  if (names.length > 0 && positional > 0) throw new Error('a query mixes @name and ? parameters');
  return { text: out, names: names.length > 0 ? names : null, positional };
}

/** The index just past the quote that closes the one at `start`; a doubled quote is an escaped one. */
function closingQuote(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return sql.length;
}

/** The values in `$n` order, refusing a missing named value the way better-sqlite3 does. */
export function bindParams(statement: PostgresStatement, queryName: string, params: unknown): unknown[] {
  if (params === undefined) params = statement.names === null ? [] : {};
  if (Array.isArray(params)) {
    if (statement.names !== null) throw new Error(`named query ${queryName} takes named parameters, not a list`);
    if (params.length !== statement.positional) {
      throw new Error(`named query ${queryName} takes ${statement.positional} parameters, got ${params.length}`);
    }
    return [...params];
  }
  if (statement.names === null) {
    if (statement.positional > 0) throw new Error(`named query ${queryName} takes positional parameters, not an object`);
    return [];
  }
  const record = params as Record<string, unknown>;
  return statement.names.map((name) => {
    if (!(name in record)) throw new Error(`named query ${queryName}: missing parameter @${name}`);
    return record[name];
  });
}
