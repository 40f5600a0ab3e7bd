// mailauth ships types for its entry point only; these are the parts of its
// header parser (lib/parse-dkim-headers.js) that sender-auth.ts reads.
declare module 'mailauth/lib/parse-dkim-headers.js' {
  interface ResultEntry {
    value?: string;
    comment?: string;
    header?: Record<string, string>;
    [property: string]: unknown;
  }
  interface ParsedField {
    header: string;
    /** The first element without `=`: the authserv-id and its optional version. */
    value?: string;
    [method: string]: ResultEntry | ResultEntry[] | string | undefined;
  }
  function parseDkimHeaders(line: string): { parsed: ParsedField; original: string };
  export default parseDkimHeaders;
}
