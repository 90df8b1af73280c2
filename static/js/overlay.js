// Draws each hand's 21 landmarks and bones on the canvas that lies over the picture.
// The picture (video or still) is shown with object-fit: contain in a box the same size as
// the canvas, so its on-screen rectangle follows from the two sizes alone. Landmarks are
// normalised to the frame that was sent, which is the whole picture scaled, so they map
// onto that rectangle; in the mirrored (selfie) view x is flipped.

/** MediaPipe's hand connections: wrist 0, thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20. */
export const BONES = [
  [0, 1], [1, 2], [2, 3], [3, 4],
  [0, 5], [5, 6], [6, 7], [7, 8],
  [5, 9], [9, 10], [10, 11], [11, 12],
  [9, 13], [13, 14], [14, 15], [15, 16],
  [13, 17], [17, 18], [18, 19], [19, 20],
  [0, 17],
];

const COLOURS = { Right: "#5cc8ff", Left: "#ffb347" };
const OTHER_COLOUR = "#d7a6ff";
const OUTLINE = "rgba(0, 0, 0, 0.75)";

/**
 * Where a mediaWidth x mediaHeight picture lands inside a boxWidth x boxHeight box with
 * object-fit: contain.
 * @returns {{x: number, y: number, width: number, height: number}}
 */
export function containRect(boxWidth, boxHeight, mediaWidth, mediaHeight) {
  const scale = Math.min(boxWidth / mediaWidth, boxHeight / mediaHeight);
  const width = mediaWidth * scale;
  const height = mediaHeight * scale;
  return { x: (boxWidth - width) / 2, y: (boxHeight - height) / 2, width, height };
}

/**
 * @typedef {{handedness: string, score: number, landmarks: number[][]}} Hand
 * @typedef {{mediaWidth: number, mediaHeight: number, mirrored: boolean}} View
 */

export class Overlay {
  #canvas;
  #context;
  /** What is on the canvas now, to redraw it when the canvas is resized. */
  #shown = null;

  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.#canvas = canvas;
    this.#context = canvas.getContext("2d");
    new ResizeObserver(() => {
      if (this.#shown) this.draw(this.#shown.hands, this.#shown.view, this.#shown.seq);
    }).observe(canvas);
  }

  /**
   * Replaces the drawing with these hands, then fires "overlay-drawn" on the canvas
   * (detail: {seq, hands}) so a test can read the pixels of exactly this drawing.
   * @param {Hand[]} hands
   * @param {View} view  the picture's own pixel size and whether it is shown mirrored
   * @param {number | null} seq  the frame's number, for the event
   */
  draw(hands, view, seq = null) {
    this.#shown = { hands, view, seq };
    const ratio = window.devicePixelRatio || 1;
    const width = Math.round(this.#canvas.clientWidth * ratio);
    const height = Math.round(this.#canvas.clientHeight * ratio);
    if (this.#canvas.width !== width || this.#canvas.height !== height) {
      this.#canvas.width = width;
      this.#canvas.height = height;
    }
    const context = this.#context;
    context.clearRect(0, 0, width, height);
    if (width > 0 && height > 0 && view.mediaWidth > 0 && view.mediaHeight > 0) {
      const rect = containRect(width, height, view.mediaWidth, view.mediaHeight);
      for (const hand of hands) this.#drawHand(hand, rect, view.mirrored, ratio);
    }
    this.#canvas.dispatchEvent(new CustomEvent("overlay-drawn", { detail: { seq, hands } }));
  }

  clear() {
    this.#shown = null;
    this.#context.clearRect(0, 0, this.#canvas.width, this.#canvas.height);
  }

  #drawHand(hand, rect, mirrored, ratio) {
    const context = this.#context;
    const points = hand.landmarks.map(([x, y]) => [
      rect.x + (mirrored ? 1 - x : x) * rect.width,
      rect.y + y * rect.height,
    ]);
    const colour = COLOURS[hand.handedness] ?? OTHER_COLOUR;
    context.lineCap = "round";
    context.lineJoin = "round";
    // A dark outline under a bright line keeps the skeleton visible on light and dark skin
    // and backgrounds alike.
    for (const [strokeStyle, lineWidth] of [[OUTLINE, 6 * ratio], [colour, 3 * ratio]]) {
      context.strokeStyle = strokeStyle;
      context.lineWidth = lineWidth;
      context.beginPath();
      for (const [from, to] of BONES) {
        context.moveTo(points[from][0], points[from][1]);
        context.lineTo(points[to][0], points[to][1]);
      }
      context.stroke();
    }
    context.fillStyle = "#ffffff";
    context.strokeStyle = OUTLINE;
    context.lineWidth = 1.5 * ratio;
    for (const [x, y] of points) {
      context.beginPath();
      context.arc(x, y, 3.5 * ratio, 0, 2 * Math.PI);
      context.fill();
      context.stroke();
    }
    this.#drawLabel(`${hand.handedness} ${Math.round((hand.score ?? 0) * 100)}%`, points[0], colour, ratio);
  }

  #drawLabel(text, [x, y], colour, ratio) {
    const context = this.#context;
    const size = 14 * ratio;
    context.font = `600 ${size}px system-ui, sans-serif`;
    const padding = 4 * ratio;
    const boxWidth = context.measureText(text).width + 2 * padding;
    const boxHeight = size + 2 * padding;
    // Just below the wrist, kept inside the canvas.
    const left = Math.min(Math.max(0, x - boxWidth / 2), this.#canvas.width - boxWidth);
    const top = Math.min(Math.max(0, y + 10 * ratio), this.#canvas.height - boxHeight);
    context.fillStyle = "rgba(0, 0, 0, 0.7)";
    context.fillRect(left, top, boxWidth, boxHeight);
    context.fillStyle = colour;
    context.textBaseline = "top";
    context.fillText(text, left + padding, top + padding);
  }
}
