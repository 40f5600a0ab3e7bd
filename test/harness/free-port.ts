import net from 'node:net';

/**
 * Asks the kernel for an unused loopback port. The port is released before it is
 * returned, so another process can still take it: callers that bind later must be
 * ready to retry with a fresh port.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      if (address === null || typeof address === 'string') {
        probe.close();
        reject(new Error(`unexpected listen address: ${String(address)}`));
        return;
      }
      probe.close(() => resolve(address.port));
    });
  });
}
