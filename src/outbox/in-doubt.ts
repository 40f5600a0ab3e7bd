/**
 * Bounds how many mails can be "in doubt" at once: the end of the message
 * sent to the SMTP server, but its sent mark not yet committed. SMTP has no
 * two-phase commit, so a node killed then cannot know whether the server
 * kept those mails and sends them again; the bound is how many a kill can
 * duplicate. The body of every mail still travels over all pooled
 * connections at once; only the last step of each (its final dot, the
 * server's answer and our commit) waits its turn.
 */
export class InDoubtLimit {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  /** `limit` is read on every entry, so a reload applies to the next mail. */
  constructor(private readonly limit: () => number) {}

  /** Resolves with the function that ends this mail's doubt, once fewer than the limit are in doubt. */
  async enter(): Promise<() => void> {
    while (this.held >= this.limit()) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.held++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.held--;
      // every waiter looks again: a limit raised by a reload may let in more than one
      for (const wake of this.waiting.splice(0)) wake();
    };
  }
}
