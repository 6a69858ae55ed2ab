/**
 * A loop's sleep that another event can cut short: `sleep(ms)` resolves after ms, or at once when
 * `wake()` is called meanwhile, or was called since the last `clear()` (a wake-up that arrives
 * while the loop is busy is not lost).
 */
export class Alarm {
  #woken = false;
  #wake: (() => void) | undefined;

  /** Whether wake() was called since the last clear(). */
  get woken(): boolean {
    return this.#woken;
  }

  /** Forgets earlier wake-ups: call at the top of each round. */
  clear(): void {
    this.#woken = false;
  }

  sleep(ms: number): Promise<void> {
    if (this.#woken) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }
}
