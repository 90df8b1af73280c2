// HTTP calls to the signwire API (shared/API.md): adds the token when the page has one and
// turns every failure into an ApiError carrying the contract's error code and sentence.

/** A request that did not succeed: the server's error, or no answer at all (status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status  HTTP status, 0 when the server could not be reached
   * @param {string} code    the contract's code ("busy", "bad_image", ...) or "unreachable"
   * @param {string} message a sentence for people
   * @param {number} retryAfterMs  from Retry-After, 0 when absent
   */
  constructor(status, code, message, retryAfterMs = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Milliseconds from a Retry-After header (seconds or an HTTP date); 0 when absent.
 * @param {string | null} value
 */
export function retryAfterMs(value) {
  if (!value) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? 0 : Math.max(0, date - Date.now());
}

/**
 * The JSON body of a response, or a contract-shaped error when it is not JSON (a proxy's
 * HTML error page, say).
 * @param {Response} response
 * @returns {Promise<any>}
 */
export async function readJson(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return {
      type: "error",
      code: response.ok ? "bad_response" : `http_${response.status}`,
      message: `the server answered ${response.status} ${response.statusText} without JSON`,
    };
  }
}

export class Api {
  #token;

  /** @param {{token?: string | null}} options */
  constructor({ token = null } = {}) {
    this.#token = token;
  }

  /** The token for URLs the page cannot add headers to (the WebSocket). */
  get token() {
    return this.#token;
  }

  #headers(extra = {}) {
    return this.#token ? { ...extra, Authorization: `Bearer ${this.#token}` } : extra;
  }

  /**
   * Sends a request and returns the response; a network failure becomes ApiError(0).
   * @param {string} path
   * @param {RequestInit} init
   */
  async #fetch(path, init) {
    try {
      return await fetch(path, { ...init, headers: this.#headers(init.headers) });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw new ApiError(0, "unreachable", `the server at ${location.host} cannot be reached`);
    }
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]  sent as JSON when given
   * @returns {Promise<any>} the parsed JSON answer
   * @throws {ApiError}
   */
  async json(method, path, body) {
    const init = { method, cache: "no-store" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "Content-Type": "application/json" };
    }
    const response = await this.#fetch(path, init);
    const answer = await readJson(response);
    if (!response.ok) {
      throw new ApiError(
        response.status,
        answer.code ?? `http_${response.status}`,
        answer.message ?? `${method} ${path} failed with ${response.status}`,
        retryAfterMs(response.headers.get("Retry-After")),
      );
    }
    return answer;
  }

  /**
   * POSTs one frame to /api/frame. The answer is returned whatever its status, because
   * an error answer is a message like a result (the caller switches on its type).
   * @param {Blob} blob  the image bytes
   * @param {{session?: string | null, mirrored?: boolean, signal?: AbortSignal}} options
   * @returns {Promise<{message: any, retryAfterMs: number}>}
   * @throws {ApiError} only when the server cannot be reached
   */
  async postFrame(blob, { session = null, mirrored = false, signal } = {}) {
    const query = new URLSearchParams();
    if (session) query.set("session", session);
    if (mirrored) query.set("mirrored", "1");
    const search = query.toString() ? `?${query}` : "";
    const response = await this.#fetch(`/api/frame${search}`, {
      method: "POST",
      body: blob,
      headers: { "Content-Type": blob.type || "image/jpeg" },
      cache: "no-store",
      signal,
    });
    return { message: await readJson(response), retryAfterMs: retryAfterMs(response.headers.get("Retry-After")) };
  }
}
