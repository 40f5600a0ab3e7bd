/**
 * Settles like `promise`, or, if it has not settled after `ms`, with what
 * `onTimeout` returns (or rejects with what it throws). The operation itself
 * is not cancelled: `onTimeout` is where the caller closes what it ran on,
 * and a late rejection of the abandoned promise is swallowed here.
 */
export function withDeadline<T, U = never>(promise: Promise<T>, ms: number, onTimeout: () => U): Promise<T | U> {
  return new Promise<T | U>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err);
      }
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
