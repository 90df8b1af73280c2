// Paces frames: one in flight at a time. The next frame goes out when the answer to the
// previous one has arrived or when the frame interval has passed since it was sent,
// whichever is later (or later still when the server asks to hold off).

export const DEFAULT_INTERVAL_MS = 200;
const NO_FRAME_PAUSE_MS = 50;

export class Pacer {
  #grab;
  #send;
  #onProblem;
  #intervalMs;
  #running = false;
  /** Bumped on every start/stop, so a loop from an earlier start ends itself. */
  #generation = 0;
  #wake = () => {};

  /**
   * @param {{
   *   grab: () => Promise<{blob: Blob, width: number, height: number} | null>,
   *   send: (frame: {blob: Blob, width: number, height: number}) => Promise<{retryAfterMs: number}>,
   *   onProblem: (error: unknown) => void,
   *   intervalMs?: number,
   * }} options
   *   grab: the next frame, or null when there is none yet (camera still starting)
   *   send: resolves when the frame is answered or given up on
   */
  constructor({ grab, send, onProblem, intervalMs = DEFAULT_INTERVAL_MS }) {
    this.#grab = grab;
    this.#send = send;
    this.#onProblem = onProblem;
    this.#intervalMs = intervalMs;
  }

  get running() {
    return this.#running;
  }

  get intervalMs() {
    return this.#intervalMs;
  }

  /** @param {number} ms  0 means as fast as the server answers */
  set intervalMs(ms) {
    this.#intervalMs = Math.max(0, ms);
    this.#wake();
  }

  start() {
    if (this.#running) return;
    this.#running = true;
    this.#generation += 1;
    this.#loop(this.#generation);
  }

  stop() {
    this.#running = false;
    this.#generation += 1;
    this.#wake();
  }

  async #loop(generation) {
    while (generation === this.#generation) {
      const sentAt = performance.now();
      // With no frame yet (camera starting, a still on show) look again a bit later.
      let holdOffMs = NO_FRAME_PAUSE_MS;
      try {
        const frame = await this.#grab();
        if (generation !== this.#generation) return;
        if (frame) ({ retryAfterMs: holdOffMs } = await this.#send(frame));
      } catch (error) {
        this.#onProblem(error);
        holdOffMs = 1000;
      }
      const holdUntil = performance.now() + holdOffMs;
      await this.#pause(() => Math.max(sentAt + this.#intervalMs, holdUntil) - performance.now());
    }
  }

  /**
   * Waits until remainingMs() is 0; re-measured when the interval changes or on stop.
   * @param {() => number} remainingMs
   */
  async #pause(remainingMs) {
    // At least one macrotask, even at interval 0: a loop of resolved promises alone would
    // never let the browser render or handle input.
    let ms = Math.max(0, remainingMs());
    do {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = () => {};
      ms = remainingMs();
    } while (ms > 0 && this.#running);
  }
}
