// Wiring only: finds the page's elements and connects camera -> pacer -> connection ->
// overlay and panels, and decides which answer goes where (camera or still image). Each
// module does one job; nothing here draws, encodes or parses.

import { Camera, CameraError } from "./camera.js";
import { Connection } from "./connection.js";
import { FrameEncoder } from "./encoder.js";
import { Api } from "./http.js";
import { MemoryPanel } from "./memory.js";
import { Overlay } from "./overlay.js";
import { DEFAULT_INTERVAL_MS, Pacer } from "./pacer.js";
import { SignReadout } from "./signs/text.js";
import { TeachPanel } from "./signs/teach.js";
import { Stage } from "./stage.js";
import { Stats } from "./stats.js";
import { showTransport, StatusBoard } from "./status.js";
import { StillPicker } from "./still.js";

/** The page sends the camera image as the camera sees it (stage.js shows it mirrored). */
const SENDS_MIRRORED = false;

const byId = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const status = new StatusBoard(byId("messages"));
window.addEventListener("error", (event) => status.set("page", "error", `Something went wrong in the page: ${event.message}`));
window.addEventListener("unhandledrejection", (event) =>
  status.set("page", "error", `Something went wrong in the page: ${event.reason?.message ?? event.reason}`));

const api = new Api({ token: params.get("token") });
const stage = new Stage({ stage: byId("stage"), video: byId("video"), still: byId("still"), note: byId("stage-note") });
const overlay = new Overlay(byId("overlay"));
const camera = new Camera(byId("video"));
const cameraEncoder = new FrameEncoder();
const stillEncoder = new FrameEncoder();
const stats = new Stats({
  fps: byId("fps"), latency: byId("latency"), serverMs: byId("server-ms"), dropped: byId("dropped"), frameSize: byId("frame-size"),
});
const readout = new SignReadout({ label: byId("sign-label"), detail: byId("sign-detail"), hands: byId("hands-summary"), text: byId("text-out") });
const teach = new TeachPanel({
  api,
  elements: {
    form: byId("teach-form"), label: byId("teach-label"), seconds: byId("teach-seconds"), start: byId("teach-start"),
    progress: byId("teach-progress"), builtin: byId("builtin-signs"), taught: byId("taught-signs"),
  },
});
const memory = new MemoryPanel({ api, text: byId("memory-text"), canvas: byId("memory-chart") });

const connection = new Connection({
  api,
  mirrored: SENDS_MIRRORED,
  handlers: {
    onResult(result, { rttMs, still }) {
      status.clear("answer");
      if (still) {
        if (stage.mode !== "still") return;
        overlay.draw(result.hands, stage.view, null);
        readout.showStill(result);
        return;
      }
      stats.answered({ rttMs, serverMs: result.timings_ms?.total, dropped: result.dropped });
      // An answer to a camera frame sent just before a still was picked belongs to neither.
      if (stage.mode !== "camera") return;
      overlay.draw(result.hands, stage.view, result.seq);
      readout.update(result);
      teach.onResult(result);
    },
    onError(error, { still }) {
      const what = still ? "the still image" : "a frame";
      const hint = error.code === "unauthorized" ? " This server needs a token: open the page as /?token=YOUR_TOKEN." : "";
      status.set("answer", "error", `The server refused ${what}: ${error.message} (${error.code}).${hint}`);
    },
    onTransport(transport, { reconnectInMs }) {
      showTransport(status, byId("transport"), transport, reconnectInMs);
      // A skeleton from before an outage would sit still over a moving hand.
      if (transport === "offline") overlay.clear();
    },
  },
});

const pacer = new Pacer({
  intervalMs: Number(params.get("interval") ?? DEFAULT_INTERVAL_MS),
  async grab() {
    if (stage.mode !== "camera" || !camera.ready) return null;
    const video = camera.video;
    const frame = await cameraEncoder.encode(video, video.videoWidth, video.videoHeight);
    stats.frameSent(frame.blob.size);
    return frame;
  },
  send: (frame) => connection.send(frame.blob),
  onProblem: (error) => status.set("frame", "error", `A frame could not be sent: ${error.message}`),
});

async function startCamera() {
  byId("retry-camera").hidden = true;
  stage.setNote(null);
  status.clear("camera");
  try {
    await camera.start(() => showCameraProblem("The camera stopped (unplugged or switched off). Press \"Try the camera again\"."));
  } catch (error) {
    if (!(error instanceof CameraError)) throw error;
    showCameraProblem(error.message);
  }
}

function showCameraProblem(message) {
  status.set("camera", "error", message);
  stage.setNote(message);
  byId("retry-camera").hidden = false;
}

async function showStill(file) {
  status.clear("still");
  try {
    const image = await stage.showStill(file);
    overlay.clear();
    byId("back-to-camera").hidden = false;
    readout.showStill(null);
    const frame = await stillEncoder.encode(image, image.naturalWidth, image.naturalHeight);
    await connection.sendStill(frame.blob);
  } catch (error) {
    status.set("still", "error", `The still image could not be read: ${error.message}.`);
  }
}

new StillPicker({
  input: byId("still-input"),
  dropZone: byId("stage"),
  onFile: showStill,
  onRejected: (reason) => status.set("still", "error", reason),
});

byId("back-to-camera").addEventListener("click", () => {
  stage.showCamera();
  overlay.clear();
  byId("back-to-camera").hidden = true;
  status.clear("still");
});
byId("retry-camera").addEventListener("click", startCamera);
byId("pause").addEventListener("click", (event) => {
  const button = event.currentTarget;
  if (pacer.running) pacer.stop();
  else pacer.start();
  button.textContent = pacer.running ? "Pause" : "Resume";
  button.setAttribute("aria-pressed", String(!pacer.running));
});
const intervalInput = byId("interval");
intervalInput.value = String(pacer.intervalMs);
intervalInput.addEventListener("change", () => {
  const ms = Number(intervalInput.value);
  if (Number.isFinite(ms) && ms >= 0) pacer.intervalMs = ms;
  intervalInput.value = String(pacer.intervalMs);
});
byId("clear-text").addEventListener("click", () => {
  readout.clear();
  connection.reset();
});

connection.start();
pacer.start();
memory.start();
teach.refresh();
startCamera();
