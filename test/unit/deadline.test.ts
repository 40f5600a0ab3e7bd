import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { withDeadline } from '../../src/core/deadline.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A promise settled from outside, like an operation on the network. */
function pending<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('withDeadline', () => {
  it('settles with the value when the operation finishes in time, and never times out afterwards', async () => {
    const op = pending<string>();
    const onTimeout = vi.fn(() => 'late');
    const result = withDeadline(op.promise, 1000, onTimeout);
    op.resolve('done');
    await expect(result).resolves.toBe('done');
    await vi.advanceTimersByTimeAsync(5000);
    expect(onTimeout).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('passes on the error of an operation that fails in time', async () => {
    const op = pending<string>();
    const result = withDeadline(op.promise, 1000, () => 'late');
    op.reject(new Error('refused'));
    await expect(result).rejects.toThrow('refused');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('answers with what onTimeout returns once the deadline passes, not a moment earlier', async () => {
    const op = pending<string>();
    let answer: string | undefined;
    void withDeadline(op.promise, 1000, () => 'timed out').then((v) => (answer = v));
    await vi.advanceTimersByTimeAsync(999);
    expect(answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(answer).toBe('timed out');
  });

  it('rejects with what onTimeout throws, and swallows the abandoned operation failing later', async () => {
    const op = pending<string>();
    const result = withDeadline(op.promise, 1000, () => {
      throw new Error('no answer within 1000 ms');
    });
    const caught = result.catch((err: Error) => err.message);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await caught).toBe('no answer within 1000 ms');
    // An unhandled rejection here would fail the run.
    op.reject(new Error('connection reset'));
    await vi.advanceTimersByTimeAsync(0);
  });
});
