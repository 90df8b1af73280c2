// The message list under the header: one line per ongoing problem or notice, each under a
// key so it can be replaced or cleared when the problem goes away. The list is an
// aria-live region, so screen readers hear each new message once.

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
