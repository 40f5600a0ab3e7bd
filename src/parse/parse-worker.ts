// Entry of a parse worker thread (see parse-pool.ts): parses one message at
// a time and answers with its verdict. A parse that runs past its deadline
// is not answered at all: the pool terminates this thread.

import { parentPort } from 'node:worker_threads';
import { parseMessage, type ParseOptions } from './parse-message.js';

export interface ParseRequest {
  id: number;
  raw: Uint8Array;
  opts: ParseOptions;
}

const port = parentPort;
if (port === null) throw new Error('parse-worker.js runs as a worker thread only');

port.on('message', (req: ParseRequest) => {
  const raw = Buffer.from(req.raw.buffer, req.raw.byteOffset, req.raw.byteLength);
  void parseMessage(raw, req.opts).then((verdict) => port.postMessage({ id: req.id, verdict }));
});
// Loaded: from now on a parse's deadline measures the parse, not the start of a thread.
port.postMessage({ ready: true });
