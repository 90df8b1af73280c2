"""Measures the page in headless Chromium against a local server: a benchmark, not a test.

    .venv/bin/python -m tests.e2e.measure_page [--seconds 20]

Starts ``python -m server`` (default config, throw-away signs database), opens the page with
Chromium's fake camera playing ``open_hand_640x360.mp4`` and, for each setting, counts over a
fixed window what went over the wire: answers per second, round trip per frame (from the
page's send to the answer, measured in the page with performance.now()), JPEG bytes per
frame, results with a hand, the server's own ``timings_ms.total``, and the time from opening
the page to the first skeleton drawn (the first row's includes loading the model). Prints one
table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright

from tests.conftest import default_toml, start_server
from tests.e2e.conftest import CAMERA_VIDEO, CHROMIUM, launch, open_probe, write_y4m
from tests.e2e.test_fallback import FAILING_SOCKET

#: Stamps every binary frame the page sends and every answer it gets, in the page's clock.
RECORDER = """
(() => {
  window.measured = { sent: [], answers: [] };
  const RealWebSocket = window.WebSocket;
  const send = RealWebSocket.prototype.send;
  RealWebSocket.prototype.send = function (data) {
    if (typeof data !== "string") {
      // seq is the count of binary messages on this socket (shared/API.md).
      this.binarySent = (this.binarySent ?? 0) + 1;
      window.measured.sent.push([performance.now(), data.byteLength ?? data.size, this.binarySent]);
    }
    return send.call(this, data);
  };
  const fetchFrame = window.fetch;
  window.fetch = async function (input, init) {
    const isFrame = String(input).startsWith("/api/frame");
    const started = performance.now();
    const response = await fetchFrame.call(this, input, init);
    if (isFrame) {
      const answer = await response.clone().json();
      window.measured.sent.push([started, init.body.size, null]);
      window.measured.answers.push([performance.now(), answer, started]);
    }
    return response;
  };
  window.WebSocket = new Proxy(RealWebSocket, {
    construct(target, args) {
      const socket = new target(...args);
      socket.addEventListener("message", (event) => {
        window.measured.answers.push([performance.now(), JSON.parse(event.data), null]);
      });
      return socket;
    },
  });
})();
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(browser: Browser, url: str, *, interval_ms: int, websocket: bool, seconds: float) -> dict[str, Any]:
    script = RECORDER if websocket else FAILING_SOCKET % -1 + RECORDER
    probe = open_probe(browser, init_script=script)
    page = probe.page
    opened = time.monotonic()
    page.goto(f"{url}/?interval={interval_ms}")
    # Warm-up: the first answer with a hand (the model may load on it).
    probe.draw_probe(media="#video", mirrored=True, timeout_ms=30_000)
    first_hand_s = time.monotonic() - opened
    page.evaluate("() => { window.measured.sent.length = 0; window.measured.answers.length = 0; }")
    page.wait_for_timeout(seconds * 1000)  # the measurement window itself
    data = page.evaluate("() => window.measured")
    probe.context.close()
    sent, answers = data["sent"], data["answers"]
    if websocket:
        sent_at = {seq: at for at, _, seq in sent}
        rtts = [at - sent_at[answer["seq"]] for at, answer, _ in answers if answer.get("seq") in sent_at]
    else:
        rtts = [at - started for at, _, started in answers]
    results = [answer for _, answer, _ in answers if answer.get("type") == "result"]
    span_s = (answers[-1][0] - answers[0][0]) / 1000 if len(answers) > 1 else float("nan")
    return {
        "transport": "websocket" if websocket else "http",
        "interval_ms": interval_ms,
        "first_hand_s": first_hand_s,
        "answers": len(answers),
        "fps": (len(answers) - 1) / span_s if len(answers) > 1 else float("nan"),
        "rtt_p50_ms": statistics.median(rtts),
        "rtt_p95_ms": percentile(rtts, 0.95),
        "jpeg_bytes_median": statistics.median(size for _, size, _ in sent),
        "with_hand": sum(1 for result in results if result["hands"]) / max(1, len(results)),
        "server_total_p50_ms": statistics.median(result["timings_ms"]["total"] for result in results),
        "dropped": sum(result.get("dropped") or 0 for result in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per setting")
    args = parser.parse_args()
    server = start_server(default_toml())
    try:
        with tempfile.TemporaryDirectory() as folder, sync_playwright() as driver:
            camera = write_y4m(CAMERA_VIDEO, Path(folder) / "camera.y4m")
            browser = launch(
                driver,
                CHROMIUM,
                [
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-video-capture={camera}",
                ],
            )
            rows = [
                measure(browser, server.url, interval_ms=interval, websocket=websocket, seconds=args.seconds)
                for websocket, interval in [(True, 200), (True, 0), (False, 200), (False, 0)]
            ]
            browser.close()
        with urllib.request.urlopen(server.url + "/api/memory") as response:
            memory = json.load(response)
    finally:
        server.stop()
    print(
        f"{'transport':<10} {'interval':>8} {'answers':>7} {'fps':>5} {'rtt p50':>8} {'rtt p95':>8} "
        f"{'jpeg B':>7} {'server p50':>10} {'hand':>5} {'dropped':>7} {'1st hand':>8}"
    )
    for row in rows:
        print(
            f"{row['transport']:<10} {row['interval_ms']:>6}ms {row['answers']:>7} {row['fps']:>5.1f} "
            f"{row['rtt_p50_ms']:>6.1f}ms {row['rtt_p95_ms']:>6.1f}ms {row['jpeg_bytes_median']:>7.0f} "
            f"{row['server_total_p50_ms']:>8.1f}ms {row['with_hand']:>5.0%} {row['dropped']:>7} "
            f"{row['first_hand_s']:>7.2f}s"
        )
    print(f"server rss after: {memory['rss_mb']:.1f} MB (limit {memory['limit_mb']} MB)")


if __name__ == "__main__":
    main()
