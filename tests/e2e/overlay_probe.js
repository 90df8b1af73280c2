// Evaluated in the page by the tests (PageProbe.draw_probe). Waits for the overlay's
// "overlay-drawn" event and, in the same task (so the pixels are exactly that drawing),
// checks that every reported landmark has skeleton pixels under it.
//
// Where a landmark should be is recomputed here from what the browser shows, not from the
// page's own code: the picture element's box on screen, its object-fit: contain rectangle
// from its own pixel size, and x flipped when it is shown mirrored. The canvas's box then
// turns that screen position into a canvas pixel. A stretched picture, a forgotten mirror
// or an overlay offset from the picture all miss.
({ mediaSelector, mirrored, minHands, skip, timeoutMs }) => new Promise((resolve, reject) => {
  const canvas = document.getElementById("overlay");
  let seen = 0;
  const timer = setTimeout(() => {
    canvas.removeEventListener("overlay-drawn", onDrawn);
    reject(new Error(`no overlay drawing with ${minHands}+ hands within ${timeoutMs} ms`));
  }, timeoutMs);

  function onDrawn(event) {
    const { hands, seq } = event.detail;
    if (hands.length < minHands || seen++ < skip) return;
    canvas.removeEventListener("overlay-drawn", onDrawn);
    clearTimeout(timer);

    const media = document.querySelector(mediaSelector);
    const mediaWidth = media.videoWidth ?? media.naturalWidth;
    const mediaHeight = media.videoHeight ?? media.naturalHeight;
    const box = media.getBoundingClientRect();
    const scale = Math.min(box.width / mediaWidth, box.height / mediaHeight);
    const shownLeft = box.left + (box.width - mediaWidth * scale) / 2;
    const shownTop = box.top + (box.height - mediaHeight * scale) / 2;
    const canvasBox = canvas.getBoundingClientRect();
    const toCanvasX = canvas.width / canvasBox.width;
    const toCanvasY = canvas.height / canvasBox.height;

    const { width, height } = canvas;
    const alpha = canvas.getContext("2d").getImageData(0, 0, width, height).data;
    const paintedAt = (x, y) => x >= 0 && y >= 0 && x < width && y < height && alpha[(y * width + x) * 4 + 3] > 0;
    // A joint is a dot of radius 3.5 px over bones 3-6 px wide: its centre pixel must be
    // painted; one pixel of slack for rounding.
    const paintedNear = (x, y) => {
      for (let dy = -1; dy <= 1; dy += 1) {
        for (let dx = -1; dx <= 1; dx += 1) {
          if (paintedAt(Math.round(x) + dx, Math.round(y) + dy)) return true;
        }
      }
      return false;
    };

    const points = hands.map((hand) => hand.landmarks.map(([x, y]) => {
      const screenX = shownLeft + (mirrored ? 1 - x : x) * mediaWidth * scale;
      const screenY = shownTop + y * mediaHeight * scale;
      return [(screenX - canvasBox.left) * toCanvasX, (screenY - canvasBox.top) * toCanvasY];
    }));
    const hits = points.map((hand) => hand.map(([x, y]) => paintedNear(x, y)));

    // Paint far from every hand (outside its landmarks' box grown by 60 px, room for the
    // handedness label under the wrist) would be a skeleton drawn in the wrong place.
    const margin = 60 * toCanvasX;
    const boxes = points.map((hand) => ({
      left: Math.min(...hand.map((p) => p[0])) - margin,
      right: Math.max(...hand.map((p) => p[0])) + margin,
      top: Math.min(...hand.map((p) => p[1])) - margin,
      bottom: Math.max(...hand.map((p) => p[1])) + margin,
    }));
    let painted = 0;
    let stray = 0;
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        if (alpha[(y * width + x) * 4 + 3] === 0) continue;
        painted += 1;
        if (!boxes.some((b) => x >= b.left && x <= b.right && y >= b.top && y <= b.bottom)) stray += 1;
      }
    }
    resolve({
      seq,
      hands,
      hits,
      painted,
      stray,
      canvasSize: [width, height],
      canvasBox: [canvasBox.width, canvasBox.height],
      mediaSize: [mediaWidth, mediaHeight],
      shownSize: [mediaWidth * scale, mediaHeight * scale],
    });
  }
  canvas.addEventListener("overlay-drawn", onDrawn);
})
