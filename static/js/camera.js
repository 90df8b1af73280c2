// The camera: asks for it, shows it in the <video>, reports when it stops. It does not
// encode or send anything (encoder.js and pacer.js do).

/** Why the camera is not available, in words a person can act on. */
export class CameraError extends Error {
  /**
   * @param {string} reason  one of "unsupported", "refused", "absent", "busy", "failed"
   * @param {string} message
   */
  constructor(reason, message) {
    super(message);
    this.name = "CameraError";
    this.reason = reason;
  }
}

/**
 * Maps a getUserMedia failure to a CameraError with a message that says what to do.
 * @param {unknown} error
 * @returns {CameraError}
 */
export function describeCameraError(error) {
  const name = error instanceof Error ? error.name : "";
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return new CameraError(
        "refused",
        "Camera access was refused. Allow the camera for this site (the camera icon in the address bar), then press \"Try the camera again\". You can still pick a still image.",
      );
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return new CameraError(
        "absent",
        "No camera was found. Connect a camera and press \"Try the camera again\", or pick a still image.",
      );
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return new CameraError(
        "busy",
        "The camera could not be started: another application may be using it. Close it and press \"Try the camera again\".",
      );
    default:
      return new CameraError("failed", `The camera could not be started (${name || String(error)}).`);
  }
}

export class Camera {
  #video;
  #stream = null;

  /** @param {HTMLVideoElement} video */
  constructor(video) {
    this.#video = video;
  }

  /** True once the video has a picture to grab. */
  get ready() {
    return this.#stream !== null && this.#video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA
      && this.#video.videoWidth > 0;
  }

  get video() {
    return this.#video;
  }

  /**
   * Opens the front camera (ideal 640 x 480) and plays it in the video element.
   * @param {() => void} onEnded  called if the camera stops on its own (unplugged, revoked)
   * @returns {Promise<void>}
   * @throws {CameraError}
   */
  async start(onEnded) {
    this.stop();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new CameraError(
        "unsupported",
        "This page cannot use a camera here: browsers allow it only on https:// or on localhost. Open the page through https or on this machine, or pick a still image.",
      );
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (error) {
      throw describeCameraError(error);
    }
    this.#stream = stream;
    for (const track of stream.getVideoTracks()) {
      track.addEventListener("ended", () => {
        if (this.#stream === stream) {
          this.stop();
          onEnded();
        }
      });
    }
    this.#video.srcObject = stream;
    try {
      await this.#video.play();
    } catch (error) {
      this.stop();
      throw new CameraError("failed", `The camera started but its video would not play (${error.name}).`);
    }
  }

  stop() {
    if (this.#stream) {
      for (const track of this.#stream.getTracks()) track.stop();
    }
    this.#stream = null;
    this.#video.srcObject = null;
  }
}
