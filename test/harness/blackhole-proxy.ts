// A TCP proxy on loopback that can make its open connections go silent the way
// a NAT or firewall does when it forgets a flow: nothing is forwarded either
// way any more, and neither side sees a RST or FIN. New connections are
// forwarded normally, as a fresh flow through the same NAT would be. It also
// keeps what clients sent, for tests of what goes over the wire.

import net from 'node:net';

export interface BlackholeProxy {
  host: string;
  port: number;
  /** Connections currently open through the proxy (forwarding or blackholed). */
  readonly open: number;
  /** From now on, drops every byte of the connections open now, both ways, and keeps them open. Returns how many. */
  blackhole(): number;
  /** Every byte clients sent through the proxy so far, in order (latin1: a command before COMPRESS reads as text). */
  sentByClients(): string;
  /** Closes the listener and every connection. */
  stop(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  silent: boolean;
}

export async function startBlackholeProxy(target: { host: string; port: number }): Promise<BlackholeProxy> {
  const pairs = new Set<Pair>();
  const sent: Buffer[] = [];
  const server = net.createServer((client) => {
    client.on('data', (chunk: Buffer) => sent.push(chunk));
    const upstream = net.connect({ host: target.host, port: target.port });
    const pair: Pair = { client, upstream, silent: false };
    pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk) => {
        // read and dropped, so the sender's writes keep succeeding as they would into a dead flow
        if (!pair.silent) to.write(chunk);
      });
      from.on('end', () => {
        if (!pair.silent) to.end();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', () => {
        if (!pair.silent) close();
      });
      socket.on('close', () => {
        if (!pair.silent) close();
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    get open() {
      return pairs.size;
    },
    sentByClients() {
      return Buffer.concat(sent).toString('latin1');
    },
    blackhole() {
      let n = 0;
      for (const pair of pairs) {
        if (!pair.silent) n++;
        pair.silent = true;
      }
      return n;
    },
    async stop() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
