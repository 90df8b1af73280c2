"""The page's pure pieces, run in the browser itself (no Node here): the fit rule the
server also uses, the contain rectangle, text building from `sign.stable`, and the pacing
of frames. Each test imports the module the page uses from the server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import PageProbe, Server

pytestmark = pytest.mark.browser


def run(probe: PageProbe, server: Server, script: str, arg: Any = None) -> Any:
    # Same origin as the page, without its camera or socket. A stylesheet has no
    # <link rel="icon">, so Chromium would ask for /favicon.ico: answer it here.
    probe.page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    probe.page.goto(server.url + "/static/css/app.css")
    return probe.page.evaluate(script, arg)


def test_fit_within_is_the_servers_rule(probe: PageProbe, server: Server) -> None:
    sizes = [[640, 360], [960, 640], [384, 512], [100, 100], [1920, 1080], [1, 10000], [720, 540]]
    fitted = run(
        probe,
        server,
        """async (sizes) => {
        const { fitWithin } = await import('/static/js/encoder.js');
        return sizes.map(([w, h]) => { const f = fitWithin(w, h); return [f.width, f.height]; });
    }""",
        sizes,
    )
    expected = []
    for w, h in sizes:  # shared/API.md: s = min(1, 640 / w, 480 / h), max(1, round(...))
        s = min(1, 640 / w, 480 / h)
        expected.append([max(1, round(w * s)), max(1, round(h * s))])
    assert fitted == expected


def test_contain_rect_centres_the_picture(probe: PageProbe, server: Server) -> None:
    rects = run(
        probe,
        server,
        """async () => {
        const { containRect } = await import('/static/js/overlay.js');
        return [containRect(800, 600, 640, 360), containRect(800, 600, 360, 480), containRect(640, 360, 640, 360)];
    }""",
    )
    assert rects == [
        {"x": 0, "y": 75, "width": 800, "height": 450},
        {"x": 175, "y": 0, "width": 450, "height": 600},
        {"x": 0, "y": 0, "width": 640, "height": 360},
    ]


def test_text_grows_when_stable_turns_true(probe: PageProbe, server: Server) -> None:
    texts = run(
        probe,
        server,
        """async () => {
        const { SignReadout } = await import('/static/js/signs/text.js');
        const make = (tag) => document.createElement(tag);
        const elements = { label: make('span'), detail: make('span'), hands: make('p'), text: make('output') };
        const readout = new SignReadout(elements);
        const hand = { handedness: 'Right', score: 0.9, landmarks: [] };
        const sign = (label, stable) => ({ label, confidence: 0.9, stable, source: 'builtin' });
        const seen = [];
        const feed = (s, extra = {}) => { readout.update({ hands: s ? [hand] : [], sign: s, ...extra });
                                          seen.push([elements.text.textContent, elements.label.textContent]); };
        feed(sign('A', false));  // forming: nothing yet
        feed(sign('A', true));   // turns stable: A
        feed(sign('A', true));   // still stable: no repeat
        feed(null);              // no sign: shows nothing
        feed(sign('A', true));   // stable again after a gap: A again
        feed(sign('B', true));   // another label, stable at once: B
        feed(sign('HELLO', true)); // a taught word stands apart
        feed(sign('C', false), { text: 'from server' });  // the server's text wins
        readout.clear();
        seen.push([elements.text.textContent, elements.label.textContent]);
        return seen;
    }""",
    )
    assert texts == [
        ["", "A"],
        ["A", "A"],
        ["A", "A"],
        ["A", ""],
        ["AA", "A"],
        ["AAB", "B"],
        ["AAB HELLO ", "HELLO"],
        ["from server", "C"],
        ["", "C"],
    ]


def test_pacer_keeps_one_frame_in_flight_and_the_interval(probe: PageProbe, server: Server) -> None:
    report = run(
        probe,
        server,
        """async () => {
        const { Pacer } = await import('/static/js/pacer.js');
        const sends = [];
        let inFlight = 0, most = 0;
        // A fake server whose answers take answerMs: slower than the interval at first,
        // then instant. (The timer is the fake's latency, not the test waiting.)
        let answerMs = 120;
        const done = new Promise((resolve) => {
          const pacer = new Pacer({
            intervalMs: 50,
            // Times are taken when a frame is grabbed, which is when the pacer starts it.
            grab: async () => { sends.push(performance.now()); return { blob: new Blob(['x']), width: 1, height: 1 }; },
            send: async () => {
              inFlight += 1; most = Math.max(most, inFlight);
              await new Promise((r) => setTimeout(r, answerMs));
              inFlight -= 1;
              if (sends.length === 4) answerMs = 0;
              if (sends.length === 8) { pacer.stop(); resolve(); }
              return { retryAfterMs: 0 };
            },
            onProblem: (e) => { throw e; },
          });
          pacer.start();
        });
        await done;
        const gaps = sends.slice(1).map((t, i) => t - sends[i]);
        return { most, gaps };
    }""",
    )
    assert report["most"] == 1
    slow, fast = report["gaps"][:4], report["gaps"][4:]
    # Slow answers: the next frame waits for the answer (120 ms), not the interval (50 ms).
    assert all(gap >= 119 for gap in slow), slow
    # Instant answers: the interval holds (timers never fire early; 1 ms for rounding).
    assert all(gap >= 49 for gap in fast), fast
