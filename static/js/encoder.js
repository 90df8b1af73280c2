// Turns a picture (a playing <video>, an <img>, an ImageBitmap) into the JPEG bytes the
// server gets. One canvas is reused for every frame, so encoding allocates only the Blob.
// The picture is scaled to fit 640 x 480 keeping its aspect ratio and never enlarged,
// exactly as the server would shrink it, so the landmarks that come back are normalised
// to the same picture as the one on screen.

export const MAX_WIDTH = 640;
export const MAX_HEIGHT = 480;
export const JPEG_QUALITY = 0.7;

/**
 * The size a width x height picture has once fitted within maxWidth x maxHeight.
 * Same rule as the server: s = min(1, 640 / w, 480 / h), rounded, at least 1 px.
 * @param {number} width
 * @param {number} height
 * @returns {{width: number, height: number}}
 */
export function fitWithin(width, height, maxWidth = MAX_WIDTH, maxHeight = MAX_HEIGHT) {
  const scale = Math.min(1, maxWidth / width, maxHeight / height);
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

export class FrameEncoder {
  #canvas = document.createElement("canvas");
  #context = this.#canvas.getContext("2d", { alpha: false });

  /**
   * Draws the source on the reused canvas and encodes it.
   * @param {CanvasImageSource} source
   * @param {number} sourceWidth  the source's own pixel width (videoWidth, naturalWidth)
   * @param {number} sourceHeight
   * @returns {Promise<{blob: Blob, width: number, height: number}>}
   */
  async encode(source, sourceWidth, sourceHeight) {
    const { width, height } = fitWithin(sourceWidth, sourceHeight);
    if (this.#canvas.width !== width || this.#canvas.height !== height) {
      // Resizing clears and reallocates the canvas: only when the camera changes size.
      this.#canvas.width = width;
      this.#canvas.height = height;
    }
    this.#context.drawImage(source, 0, 0, width, height);
    const blob = await new Promise((resolve, reject) => {
      this.#canvas.toBlob(
        (result) => (result ? resolve(result) : reject(new Error("the browser could not encode the frame as JPEG"))),
        "image/jpeg",
        JPEG_QUALITY,
      );
    });
    return { blob, width, height };
  }
}
