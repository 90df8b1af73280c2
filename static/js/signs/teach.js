// The "teach" panel: the person types a label and holds the sign; the landmarks of the
// results that arrive during a few seconds become examples, POSTed to
// /api/signs/{label}/examples. Also lists the signs the server knows (GET /api/signs) and
// lets a taught one be forgotten (DELETE /api/signs/{label}).

const GET_READY_S = 3;
/** Bounds one capture's memory and request size whatever the frame rate. */
const MAX_EXAMPLES = 300;
export const MAX_LABEL_LENGTH = 32;

/**
 * The example a result gives: its hands as /api/signs/{label}/examples wants them.
 * @param {{hands: {handedness: string, landmarks: number[][]}[]}} result
 */
export function exampleFrom(result) {
  return {
    hands: result.hands.map((hand) => ({ handedness: hand.handedness, landmarks: hand.landmarks })),
  };
}

export class TeachPanel {
  #api;
  #elements;
  /** @type {null | {label: string, examples: object[]}} collecting while not null */
  #capture = null;
  #busy = false;
  #timers = [];

  /**
   * @param {{api: import("../http.js").Api, elements: {
   *   form: HTMLFormElement, label: HTMLInputElement, seconds: HTMLInputElement,
   *   start: HTMLButtonElement, progress: HTMLElement, builtin: HTMLElement, taught: HTMLUListElement}}} options
   */
  constructor({ api, elements }) {
    this.#api = api;
    this.#elements = elements;
    elements.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.#busy) this.#cancel();
      else this.#begin();
    });
  }

  /** Feeds one result; kept as an example while a capture runs and a hand is in view. */
  onResult(result) {
    const capture = this.#capture;
    if (!capture || result.hands.length === 0 || capture.examples.length >= MAX_EXAMPLES) return;
    capture.examples.push(exampleFrom(result));
    this.#say(`Capturing "${capture.label}": ${capture.examples.length} frames with a hand…`);
  }

  /** Reloads the list of known signs. */
  async refresh() {
    const { builtin, taught } = this.#elements;
    let signs;
    try {
      ({ signs } = await this.#api.json("GET", "/api/signs"));
    } catch (error) {
      builtin.textContent = `The list of signs is unavailable: ${error.message}.`;
      return;
    }
    const builtins = signs.filter((sign) => sign.source === "builtin").map((sign) => sign.label);
    builtin.textContent = builtins.length ? `Built in: ${builtins.join(" ")}` : "No built-in signs.";
    taught.replaceChildren(
      ...signs
        .filter((sign) => sign.source !== "builtin")
        .map((sign) => this.#taughtItem(sign)),
    );
  }

  #taughtItem(sign) {
    const item = document.createElement("li");
    item.textContent = `${sign.label}: ${sign.examples} example${sign.examples === 1 ? "" : "s"}`;
    const forget = document.createElement("button");
    forget.type = "button";
    forget.textContent = "Forget";
    forget.setAttribute("aria-label", `Forget the sign ${sign.label}`);
    forget.addEventListener("click", async () => {
      forget.disabled = true;
      try {
        await this.#api.json("DELETE", `/api/signs/${encodeURIComponent(sign.label)}`);
        this.#say(`Forgot "${sign.label}".`);
      } catch (error) {
        this.#say(`Could not forget "${sign.label}": ${error.message}.`);
      }
      await this.refresh();
    });
    item.append(" ", forget);
    return item;
  }

  #begin() {
    const { label: labelInput, seconds: secondsInput } = this.#elements;
    const label = labelInput.value.trim();
    if (!label || label.length > MAX_LABEL_LENGTH) {
      this.#say(`Type a label of 1 to ${MAX_LABEL_LENGTH} characters first.`);
      labelInput.focus();
      return;
    }
    const seconds = Math.min(10, Math.max(1, Math.round(Number(secondsInput.value) || 3)));
    this.#setBusy(true);
    for (let left = GET_READY_S; left > 0; left -= 1) {
      this.#later((GET_READY_S - left) * 1000, () => this.#say(`Get ready to sign "${label}": ${left}…`));
    }
    this.#later(GET_READY_S * 1000, () => {
      this.#capture = { label, examples: [] };
      this.#say(`Capturing "${label}": hold the sign…`);
    });
    this.#later((GET_READY_S + seconds) * 1000, () => this.#finish());
  }

  async #finish() {
    const capture = this.#capture;
    this.#capture = null;
    this.#timers = [];
    if (!capture || capture.examples.length === 0) {
      this.#say("No hand was seen during the capture. Hold your hand in view and try again.");
      this.#setBusy(false);
      return;
    }
    this.#say(`Sending ${capture.examples.length} examples of "${capture.label}"…`);
    try {
      const answer = await this.#api.json(
        "POST",
        `/api/signs/${encodeURIComponent(capture.label)}/examples`,
        { examples: capture.examples },
      );
      this.#say(`Taught "${answer.label}": the server now holds ${answer.examples} examples.`);
    } catch (error) {
      this.#say(`Teaching "${capture.label}" failed: ${error.message}.`);
    }
    this.#setBusy(false);
    await this.refresh();
  }

  #cancel() {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
    this.#capture = null;
    this.#setBusy(false);
    this.#say("Capture cancelled.");
  }

  #later(ms, action) {
    this.#timers.push(setTimeout(action, ms));
  }

  #setBusy(busy) {
    this.#busy = busy;
    this.#elements.start.textContent = busy ? "Cancel" : "Capture";
    this.#elements.label.disabled = busy;
    this.#elements.seconds.disabled = busy;
  }

  #say(text) {
    this.#elements.progress.textContent = text;
  }
}
