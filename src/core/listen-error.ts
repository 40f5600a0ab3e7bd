/**
 * A listener that could not open its address, with the setting that moves
 * it: a bare EADDRINUSE leaves an operator guessing which of ticketd's ports
 * (status page or LMTP) was taken and what to change.
 */
export class ListenError extends Error {
  constructor(
    readonly code: string,
    /** The config key of the port, e.g. `http.port`. */
    readonly setting: string,
    /** The system's error code: EADDRINUSE, EACCES, EADDRNOTAVAIL, ... */
    readonly reason: string,
    where: string,
  ) {
    super(`cannot listen on ${where} (${reason}): ${hint(setting, reason)}`);
    this.name = 'ListenError';
  }
}

function hint(setting: string, reason: string): string {
  const host = setting.replace(/port$/, 'host');
  switch (reason) {
    case 'EADDRINUSE':
      return `another program is using that port; set ${setting} to a free port (ticketd doctor checks it), or stop the other program`;
    case 'EACCES':
      return `ports below 1024 need privileges; set ${setting} to a port above 1023`;
    case 'EADDRNOTAVAIL':
      return `that is not an address of this machine; set ${host}`;
    default:
      return `check ${host} and ${setting}`;
  }
}
