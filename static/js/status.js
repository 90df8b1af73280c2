// What the page tells the person about itself: the message list under the header (one line
// per ongoing problem or notice, each under a key so it can be replaced or cleared when the
// problem goes away; an aria-live region, so screen readers hear each new message once) and
// the badge saying which transport is live.

const TRANSPORT_NAMES = {
  connecting: "connecting…",
  websocket: "live over WebSocket",
  http: "live over HTTP (fallback)",
  offline: "server unreachable",
};

export class StatusBoard {
  #list;
  /** @type {Map<string, HTMLLIElement>} */
  #items = new Map();

  /** @param {HTMLUListElement} list */
  constructor(list) {
    this.#list = list;
  }

  /**
   * Shows (or replaces) the message under this key.
   * @param {string} key   what it is about: "camera", "server", "frame", ...
   * @param {"info" | "warning" | "error"} kind
   * @param {string} text
   */
  set(key, kind, text) {
    let item = this.#items.get(key);
    if (item && item.textContent === text && item.dataset.kind === kind) return;
    if (!item) {
      item = document.createElement("li");
      this.#items.set(key, item);
      this.#list.append(item);
    }
    item.dataset.kind = kind;
    item.dataset.key = key;
    item.textContent = text;
  }

  /** @param {string} key */
  clear(key) {
    this.#items.get(key)?.remove();
    this.#items.delete(key);
  }
}

/**
 * Shows which transport is live in the badge, and says so in the messages when it is not
 * the WebSocket.
 * @param {StatusBoard} board
 * @param {HTMLElement} badge  has a child #transport-text
 * @param {import("./connection.js").Transport} transport
 * @param {number} reconnectInMs  when the next WebSocket attempt is, 0 when none is due
 */
export function showTransport(board, badge, transport, reconnectInMs) {
  badge.dataset.transport = transport;
  badge.querySelector("#transport-text").textContent = TRANSPORT_NAMES[transport];
  if (transport === "offline") {
    board.set("server", "error", `The signwire server at ${location.host} cannot be reached. Is it running? Retrying…`);
  } else if (transport === "http") {
    const retry = reconnectInMs > 0 ? ` Trying the WebSocket again in ${Math.ceil(reconnectInMs / 1000)} s.` : "";
    board.set("server", "warning", `The WebSocket is unavailable, so frames go over HTTP.${retry}`);
  } else {
    board.clear("server");
  }
}
