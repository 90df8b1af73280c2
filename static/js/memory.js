// The memory panel: polls GET /api/memory every 2 s and draws the server's RSS over the
// last minutes against its limit. History is a fixed-size window.

const POLL_MS = 2000;
const HISTORY_MS = 5 * 60 * 1000;
const MIN_SPAN_MS = 60 * 1000;
const MAX_POINTS = Math.ceil(HISTORY_MS / POLL_MS) + 1;

export class MemoryPanel {
  #api;
  #text;
  #canvas;
  /** @type {{at: number, rssMb: number}[]} */
  #points = [];
  #limitMb = NaN;
  #timer = 0;

  /**
   * @param {{api: import("./http.js").Api, text: HTMLElement, canvas: HTMLCanvasElement}} options
   */
  constructor({ api, text, canvas }) {
    this.#api = api;
    this.#text = text;
    this.#canvas = canvas;
  }

  start() {
    this.stop();
    this.#poll();
  }

  stop() {
    clearTimeout(this.#timer);
  }

  async #poll() {
    try {
      const memory = await this.#api.json("GET", "/api/memory");
      this.#add(memory);
    } catch (error) {
      this.#text.textContent = `Memory reading unavailable: ${error.message}.`;
    }
    // Polled after the answer, so a slow server never has two requests from us in flight.
    this.#timer = setTimeout(() => this.#poll(), POLL_MS);
  }

  #add(memory) {
    const rssMb = Number(memory.rss_mb);
    const limitMb = Number(memory.limit_mb);
    if (!Number.isFinite(rssMb)) throw new Error("the memory answer has no rss_mb");
    this.#limitMb = limitMb;
    this.#points.push({ at: performance.now(), rssMb });
    if (this.#points.length > MAX_POINTS) this.#points.shift();
    this.#canvas.dataset.readings = String(this.#points.length);
    const share = Number.isFinite(limitMb) && limitMb > 0 ? ` (${Math.round((100 * rssMb) / limitMb)}%)` : "";
    const limit = Number.isFinite(limitMb) ? ` of ${limitMb.toFixed(0)} MB limit${share}` : "";
    const model = memory.model_loaded === false ? "; model not loaded yet" : "";
    const frames = Number.isFinite(memory.frames_processed) ? `; ${memory.frames_processed} frames served` : "";
    this.#text.textContent = `${rssMb.toFixed(1)} MB${limit}${model}${frames}`;
    this.#canvas.setAttribute("aria-label", `Server memory over the last minutes; now ${this.#text.textContent}`);
    this.#draw();
  }

  #draw() {
    const canvas = this.#canvas;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(canvas.clientWidth * ratio) || canvas.width;
    canvas.height = Math.round(canvas.clientHeight * ratio) || canvas.height;
    const context = canvas.getContext("2d");
    const { width, height } = canvas;
    context.clearRect(0, 0, width, height);
    const highest = Math.max(...this.#points.map((point) => point.rssMb));
    const topMb = Math.max(Number.isFinite(this.#limitMb) ? this.#limitMb * 1.1 : 0, highest * 1.1, 1);
    const now = performance.now();
    // The time axis grows with the history, from one minute to HISTORY_MS, so the first
    // minutes are not a sliver at the right edge.
    const spanMs = Math.min(HISTORY_MS, Math.max(MIN_SPAN_MS, now - this.#points[0].at));
    const xOf = (at) => width * (1 - (now - at) / spanMs);
    const yOf = (mb) => height * (1 - mb / topMb);
    context.font = `${11 * ratio}px system-ui, sans-serif`;
    if (Number.isFinite(this.#limitMb)) {
      context.strokeStyle = "#ff9b9b";
      context.setLineDash([6 * ratio, 4 * ratio]);
      context.lineWidth = ratio;
      context.beginPath();
      context.moveTo(0, yOf(this.#limitMb));
      context.lineTo(width, yOf(this.#limitMb));
      context.stroke();
      context.setLineDash([]);
      context.fillStyle = "#ff9b9b";
      context.textAlign = "right";
      context.textBaseline = "top";
      context.fillText(`limit ${this.#limitMb.toFixed(0)} MB`, width - 4 * ratio, yOf(this.#limitMb) + 2 * ratio);
    }
    context.strokeStyle = "#7cc4ff";
    context.lineWidth = 2 * ratio;
    context.beginPath();
    this.#points.forEach((point, index) => {
      const x = xOf(point.at);
      const y = yOf(point.rssMb);
      if (index === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
    // The latest reading as a dot, so even the first one shows.
    const latest = this.#points[this.#points.length - 1];
    context.fillStyle = "#7cc4ff";
    context.beginPath();
    context.arc(Math.min(xOf(latest.at), width - 4 * ratio), yOf(latest.rssMb), 3 * ratio, 0, 2 * Math.PI);
    context.fill();
    context.fillStyle = "#b8c0cc";
    context.textAlign = "left";
    context.textBaseline = "bottom";
    context.fillText(`last ${Math.round(spanMs / 60000)} min`, 4 * ratio, height - 2 * ratio);
  }
}
