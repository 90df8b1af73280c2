// Counts what the person sees in the numbers row: answered frames per second, round-trip
// latency, the server's own time, frames the server dropped, and bytes per frame. All
// windows are bounded, so a page left open for hours holds the same few numbers.

const FPS_WINDOW_MS = 2000;
const MEDIAN_OF = 20;

/** @param {number[]} values */
function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Keeps the last `size` values. */
function pushBounded(list, value, size) {
  list.push(value);
  if (list.length > size) list.shift();
}

export class Stats {
  #elements;
  #answeredAt = [];
  #rttMs = [];
  #serverMs = [];
  #bytes = [];
  #dropped = 0;
  #firstAnswerAt = NaN;

  /**
   * @param {{fps: HTMLElement, latency: HTMLElement, serverMs: HTMLElement,
   *          dropped: HTMLElement, frameSize: HTMLElement}} elements
   */
  constructor(elements) {
    this.#elements = elements;
    // Also re-rendered on a clock, so the rate falls to 0 when answers stop coming.
    setInterval(() => this.#render(), 1000);
  }

  /** @param {number} bytes  the encoded frame's size */
  frameSent(bytes) {
    pushBounded(this.#bytes, bytes, MEDIAN_OF);
  }

  /**
   * @param {{rttMs: number, serverMs?: number, dropped?: number}} answer
   */
  answered({ rttMs, serverMs, dropped = 0 }) {
    const now = performance.now();
    if (Number.isNaN(this.#firstAnswerAt)) this.#firstAnswerAt = now;
    this.#answeredAt.push(now);
    if (rttMs > 0) pushBounded(this.#rttMs, rttMs, MEDIAN_OF);
    if (Number.isFinite(serverMs)) pushBounded(this.#serverMs, serverMs, MEDIAN_OF);
    this.#dropped += Number.isFinite(dropped) ? dropped : 0;
    this.#render();
  }

  /**
   * Answers per second over the last two seconds (drops older times): the rate between
   * the answers in that window, 0 with fewer than two. NaN until answers have come for two
   * seconds (the first answer waits for the model to load, so a shorter window would show
   * the burst after it, not the rate). Counting answers in the window instead would be
   * off by one answer in ten at 5 fps.
   */
  currentFps() {
    const now = performance.now();
    const times = this.#answeredAt;
    while (times.length > 0 && times[0] <= now - FPS_WINDOW_MS) times.shift();
    if (!(now - this.#firstAnswerAt >= FPS_WINDOW_MS)) return NaN;
    if (times.length < 2) return 0;
    return ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]);
  }

  #render() {
    const { fps, latency, serverMs, dropped, frameSize } = this.#elements;
    const rate = this.currentFps();
    fps.textContent = Number.isFinite(rate) ? rate.toFixed(1) : "–";
    const rtt = median(this.#rttMs);
    latency.textContent = Number.isFinite(rtt) ? `${Math.round(rtt)} ms` : "–";
    const server = median(this.#serverMs);
    serverMs.textContent = Number.isFinite(server) ? `${server.toFixed(1)} ms` : "–";
    dropped.textContent = String(this.#dropped);
    const bytes = median(this.#bytes);
    frameSize.textContent = Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)} KiB` : "–";
  }
}
