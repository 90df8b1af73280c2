// The picture the overlay is drawn on: the live camera, shown as a mirror (selfie view),
// or a still image the person picked, shown as it is. It tells the overlay the picture's
// own size and whether it is mirrored, and keeps the stage's shape the picture's shape.

/** @typedef {"camera" | "still"} Mode */

export class Stage {
  #stage;
  #video;
  #still;
  #note;
  /** @type {Mode} */
  #mode = "camera";
  #stillUrl = null;
  /** A note about the camera (refused, absent); shown over the camera view only. */
  #noteText = null;

  /**
   * @param {{stage: HTMLElement, video: HTMLVideoElement, still: HTMLImageElement, note: HTMLElement}} elements
   */
  constructor({ stage, video, still, note }) {
    this.#stage = stage;
    this.#video = video;
    this.#still = still;
    this.#note = note;
    video.classList.add("mirrored");
    for (const event of ["loadedmetadata", "resize"]) {
      video.addEventListener(event, () => {
        if (this.#mode === "camera") this.#fitShape(video.videoWidth, video.videoHeight);
      });
    }
  }

  /** @returns {Mode} */
  get mode() {
    return this.#mode;
  }

  /**
   * The picture on show: its own pixel size and whether it is displayed mirrored.
   * @returns {{mediaWidth: number, mediaHeight: number, mirrored: boolean}}
   */
  get view() {
    if (this.#mode === "still") {
      return { mediaWidth: this.#still.naturalWidth, mediaHeight: this.#still.naturalHeight, mirrored: false };
    }
    return { mediaWidth: this.#video.videoWidth, mediaHeight: this.#video.videoHeight, mirrored: true };
  }

  showCamera() {
    this.#mode = "camera";
    this.#still.hidden = true;
    this.#video.hidden = false;
    this.#releaseStill();
    this.#showNote();
    if (this.#video.videoWidth > 0) this.#fitShape(this.#video.videoWidth, this.#video.videoHeight);
  }

  /**
   * Shows a picked image instead of the camera.
   * @param {Blob} file
   * @returns {Promise<HTMLImageElement>} the loaded image
   * @throws {Error} when the browser cannot decode it
   */
  async showStill(file) {
    this.#releaseStill();
    this.#stillUrl = URL.createObjectURL(file);
    this.#still.src = this.#stillUrl;
    try {
      await this.#still.decode();
    } catch {
      this.showCamera();
      throw new Error("this file is not an image the browser can show");
    }
    this.#mode = "still";
    this.#video.hidden = true;
    this.#still.hidden = false;
    this.#showNote();
    this.#fitShape(this.#still.naturalWidth, this.#still.naturalHeight);
    return this.#still;
  }

  /** @param {string | null} text  a note over the camera view, or null for none */
  setNote(text) {
    this.#noteText = text;
    this.#showNote();
  }

  #showNote() {
    const text = this.#mode === "camera" ? this.#noteText : null;
    this.#note.hidden = !text;
    this.#note.textContent = text ?? "";
  }

  #fitShape(width, height) {
    // CSSOM rather than a style attribute, so a strict Content-Security-Policy allows it.
    if (width > 0 && height > 0) this.#stage.style.aspectRatio = `${width} / ${height}`;
  }

  #releaseStill() {
    if (this.#stillUrl) URL.revokeObjectURL(this.#stillUrl);
    this.#stillUrl = null;
    this.#still.removeAttribute("src");
  }
}
