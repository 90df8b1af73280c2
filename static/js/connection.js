// Carries frames to the server and answers back: over the WebSocket /ws while it is open,
// over POST /api/frame when it cannot open or drops, and back to the WebSocket with
// backoff. It owns the one `switch` on the server's message type. It does not pace frames
// (pacer.js) or draw anything.

import { ApiError } from "./http.js";

/** Delays between WebSocket attempts; the last one repeats. */
const RECONNECT_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 30000];
/** How long the very first frame waits for the socket to open before going over HTTP. */
const FIRST_OPEN_WAIT_MS = 3000;
/** An answer later than this is given up on. The first frame loads the model: seconds. */
const ANSWER_TIMEOUT_MS = 15000;
/** The pause before trying again when the server cannot be reached at all. */
const UNREACHABLE_PAUSE_MS = 2000;
/** The WebSocket has no Retry-After: pause this long after a `busy` error. */
const BUSY_PAUSE_MS = 1000;

/**
 * A random id for this page load, so the server keeps sign state across HTTP posts.
 * crypto.getRandomValues works on plain http too, unlike crypto.randomUUID.
 */
export function randomSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * @typedef {"connecting" | "websocket" | "http" | "offline"} Transport
 * @typedef {{
 *   onResult: (result: any, info: {transport: Transport, rttMs: number, still: boolean}) => void,
 *   onError: (error: {code: string, message: string}, info: {transport: Transport, still: boolean}) => void,
 *   onTransport: (transport: Transport, info: {reconnectInMs: number}) => void,
 * }} Handlers
 */

export class Connection {
  #api;
  #mirrored;
  #session = randomSessionId();
  /** @type {Handlers} */
  #handlers;
  /** @type {WebSocket | null} */
  #socket = null;
  #open = false;
  #seq = 0;
  /** The frame waiting for its answer on the socket. */
  #pending = null;
  #attempt = 0;
  #retryTimer = 0;
  #retryAt = 0;
  #reachable = true;
  /** @type {Transport} */
  #transport = "connecting";
  #firstAttempt;
  #settleFirstAttempt = () => {};

  /**
   * @param {{api: import("./http.js").Api, mirrored: boolean, handlers: Handlers}} options
   *   mirrored: whether the frames this page sends are mirrored (it says so in `hello`)
   */
  constructor({ api, mirrored, handlers }) {
    this.#api = api;
    this.#mirrored = mirrored;
    this.#handlers = handlers;
    this.#firstAttempt = new Promise((resolve) => {
      this.#settleFirstAttempt = resolve;
    });
  }

  /** @returns {Transport} */
  get transport() {
    return this.#transport;
  }

  get session() {
    return this.#session;
  }

  start() {
    this.#connect();
    window.addEventListener("pagehide", () => this.#socket?.close(1000, "page closed"));
  }

  /**
   * Sends one frame and waits for its answer (delivered to the handlers).
   * @param {Blob} blob  JPEG bytes
   * @returns {Promise<{answered: boolean, retryAfterMs: number}>}
   *   retryAfterMs: how long the server (or an outage) asks the sender to hold off
   */
  async send(blob) {
    if (!this.#open && this.#transport === "connecting") {
      await Promise.race([this.#firstAttempt, delay(FIRST_OPEN_WAIT_MS)]);
    }
    return this.#open ? this.#sendOverSocket(blob) : this.#sendOverHttp(blob);
  }

  /**
   * Sends a still image over HTTP, outside the session: it is one picture, not part of
   * the signing the session tracks. Its answer reaches the handlers with `still: true`.
   * @param {Blob} blob
   * @returns {Promise<void>}
   * @throws {ApiError} when the server cannot be reached
   */
  async sendStill(blob) {
    const sentAt = performance.now();
    const { message } = await this.#api.postFrame(blob);
    this.#deliver(message, "http", performance.now() - sentAt, true);
  }

  /**
   * Forgets the server's tracking and sign state for this page: `reset` on the socket,
   * and a new session id for HTTP.
   */
  reset() {
    this.#session = randomSessionId();
    if (this.#open) this.#socket.send(JSON.stringify({ type: "reset" }));
  }

  #connect() {
    this.#retryTimer = 0;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const token = this.#api.token ? `?token=${encodeURIComponent(this.#api.token)}` : "";
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}/ws${token}`);
    } catch {
      this.#onSocketClosed(null, 1006);
      return;
    }
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.#socket) return;
      this.#open = true;
      this.#seq = 0;
      socket.send(JSON.stringify({ type: "hello", mirrored: this.#mirrored }));
      this.#settleFirstAttempt();
      this.#setTransport("websocket");
    });
    socket.addEventListener("message", (event) => {
      if (socket === this.#socket) this.#onSocketMessage(event);
    });
    // "error" is always followed by "close"; everything is handled there.
    socket.addEventListener("close", (event) => this.#onSocketClosed(socket, event.code));
  }

  #onSocketClosed(socket, code) {
    if (socket !== this.#socket) return;
    this.#socket = null;
    this.#open = false;
    this.#finishPending(false);
    if (code === 1009) {
      this.#handlers.onError(
        { code: "frame_too_large", message: "the server closed the WebSocket: a frame was over its size limit" },
        { transport: "websocket" },
      );
    }
    const wait = RECONNECT_DELAYS_MS[Math.min(this.#attempt, RECONNECT_DELAYS_MS.length - 1)];
    this.#attempt += 1;
    this.#retryAt = performance.now() + wait;
    this.#retryTimer = setTimeout(() => this.#connect(), wait);
    this.#settleFirstAttempt();
    this.#setTransport(this.#reachable ? "http" : "offline");
  }

  async #sendOverSocket(blob) {
    // Sent as an ArrayBuffer, not the Blob: Chromium leaves Blob messages out of its
    // DevTools protocol, so neither DevTools nor the e2e tests would see the frames.
    const bytes = await blob.arrayBuffer();
    const socket = this.#socket;
    if (!this.#open || socket === null) return this.#sendOverHttp(blob);
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.#pending?.seq === seq) this.#finishPending(false);
      }, ANSWER_TIMEOUT_MS);
      this.#pending = { seq, resolve, timer, sentAt: performance.now(), retryAfterMs: 0 };
      socket.send(bytes);
    });
  }

  #finishPending(answered) {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = null;
    clearTimeout(pending.timer);
    pending.resolve({ answered, retryAfterMs: pending.retryAfterMs });
  }

  #onSocketMessage(event) {
    if (typeof event.data !== "string") {
      throw new Error("the server sent a binary WebSocket message; the contract has only text answers");
    }
    const message = JSON.parse(event.data);
    const pending = this.#pending;
    const forPending = pending !== null && message.seq === pending.seq;
    // An answer for an older frame (one given up on after ANSWER_TIMEOUT_MS) is stale:
    // drawing it would move the skeleton back in time.
    if (typeof message.seq === "number" && !forPending) return;
    const rttMs = forPending ? performance.now() - pending.sentAt : 0;
    if (forPending && message.type === "error" && message.code === "busy") pending.retryAfterMs = BUSY_PAUSE_MS;
    if (message.type === "result") this.#attempt = 0;
    this.#deliver(message, "websocket", rttMs);
    if (forPending) this.#finishPending(true);
  }

  async #sendOverHttp(blob) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), ANSWER_TIMEOUT_MS);
    const sentAt = performance.now();
    try {
      const { message, retryAfterMs } = await this.#api.postFrame(blob, {
        session: this.#session,
        mirrored: this.#mirrored,
        signal: controller.signal,
      });
      this.#setReachable(true);
      this.#deliver(message, "http", performance.now() - sentAt);
      return { answered: true, retryAfterMs };
    } catch (error) {
      if (error instanceof ApiError && error.code === "unreachable") {
        this.#setReachable(false);
        return { answered: false, retryAfterMs: UNREACHABLE_PAUSE_MS };
      }
      if (error instanceof DOMException && error.name === "AbortError") {
        return { answered: false, retryAfterMs: 0 };
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The one place the server's message types are told apart (shared/API.md). */
  #deliver(message, transport, rttMs, still = false) {
    switch (message.type) {
      case "result":
        this.#handlers.onResult(message, { transport, rttMs, still });
        break;
      case "error":
        this.#handlers.onError(message, { transport, still });
        break;
      default:
        throw new Error(`unexpected message type from the server: ${JSON.stringify(message.type)}`);
    }
  }

  #setReachable(reachable) {
    if (reachable === this.#reachable) return;
    this.#reachable = reachable;
    if (!this.#open) this.#setTransport(reachable ? "http" : "offline");
  }

  #setTransport(transport) {
    this.#transport = transport;
    const reconnectInMs = this.#open ? 0 : Math.max(0, this.#retryAt - performance.now());
    this.#handlers.onTransport(transport, { reconnectInMs });
  }
}

/** @param {number} ms */
function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
