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

  /**
   * @param {{fps: HTMLElement, latency: HTMLElement, serverMs: HTMLElement,
   *          dropped: HTMLElement, frameSize: HTMLElement}} elements
   */
  constructor(elements) {
    this.#elements = elements;
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
    this.#answeredAt.push(now);
    while (this.#answeredAt.length > 0 && this.#answeredAt[0] < now - FPS_WINDOW_MS) this.#answeredAt.shift();
    if (rttMs > 0) pushBounded(this.#rttMs, rttMs, MEDIAN_OF);
    if (Number.isFinite(serverMs)) pushBounded(this.#serverMs, serverMs, MEDIAN_OF);
    this.#dropped += Number.isFinite(dropped) ? dropped : 0;
    this.#render();
  }

  /** Answers per second over the last two seconds. */
  get fps() {
    const times = this.#answeredAt;
    if (times.length < 2) return NaN;
    return ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]);
  }

  #render() {
    const { fps, latency, serverMs, dropped, frameSize } = this.#elements;
    fps.textContent = Number.isFinite(this.fps) ? this.fps.toFixed(1) : "–";
    const rtt = median(this.#rttMs);
    latency.textContent = Number.isFinite(rtt) ? `${Math.round(rtt)} ms` : "–";
    const server = median(this.#serverMs);
    serverMs.textContent = Number.isFinite(server) ? `${server.toFixed(1)} ms` : "–";
    dropped.textContent = String(this.#dropped);
    const bytes = median(this.#bytes);
    frameSize.textContent = Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)} KiB` : "–";
  }
}
