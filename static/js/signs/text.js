// Shows what is recognised now (the sign, the hands in view) and builds the text. When the
// server's result carries `text`, that is the text; otherwise a label is appended on the
// frame where `sign.stable` turns true, as shared/API.md says a client should.

/** @param {{handedness: string, score: number}[]} hands */
export function describeHands(hands) {
  if (hands.length === 0) return "No hand in view.";
  const parts = hands.map((hand) => `${hand.handedness} hand (${Math.round((hand.score ?? 0) * 100)}%)`);
  return `In view: ${parts.join(", ")}.`;
}

/**
 * The text with a newly stable label added: letters join up, longer labels (taught words)
 * stand apart as words.
 * @param {string} text
 * @param {string} label
 */
export function appendLabel(text, label) {
  if (label.length <= 1) return text + label;
  const gap = text === "" || text.endsWith(" ") ? "" : " ";
  return `${text}${gap}${label} `;
}

export class SignReadout {
  #elements;
  #text = "";
  /** The previous result's sign, to see `stable` turn true. */
  #previous = null;

  /**
   * @param {{label: HTMLElement, detail: HTMLElement, hands: HTMLElement, text: HTMLOutputElement}} elements
   */
  constructor(elements) {
    this.#elements = elements;
  }

  get text() {
    return this.#text;
  }

  /** @param {{hands: any[], sign: any, text?: string}} result */
  update(result) {
    const { label, detail, hands } = this.#elements;
    hands.textContent = describeHands(result.hands);
    const sign = result.sign;
    // `sign: null` shows nothing: no guess, no placeholder letter.
    label.textContent = sign ? sign.label : "";
    label.dataset.stable = String(Boolean(sign?.stable));
    detail.textContent = sign
      ? `${Math.round(sign.confidence * 100)}% ${sign.stable ? "steady" : "forming"}${sign.source === "builtin" ? "" : ` (${sign.source})`}`
      : "";
    if (typeof result.text === "string") {
      this.#setText(result.text);
    } else if (sign?.stable && !(this.#previous?.stable && this.#previous.label === sign.label)) {
      this.#setText(appendLabel(this.#text, sign.label));
    }
    this.#previous = sign;
  }

  /**
   * Describes a still image's result instead of the camera's (no sign, no text).
   * @param {{hands: any[]} | null} result  null while the answer is awaited
   */
  showStill(result) {
    const { label, detail, hands } = this.#elements;
    label.textContent = "";
    detail.textContent = "";
    const count = result?.hands.length;
    hands.textContent = result ? `Still image: ${count} hand${count === 1 ? "" : "s"} found.` : "Still image: looking for hands…";
  }

  clear() {
    this.#previous = null;
    this.#setText("");
  }

  #setText(text) {
    if (text === this.#text) return;
    this.#text = text;
    this.#elements.text.textContent = text;
  }
}
