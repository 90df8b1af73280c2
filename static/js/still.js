// Lets a person pick a still image, with the file input or by dropping it on the view.
// It only hands the file over; main.js decides what happens to it.

const ACCEPTED_TYPES = new Set(["image/jpeg", "image/png", "image/webp"]);

export class StillPicker {
  /**
   * @param {{input: HTMLInputElement, dropZone: HTMLElement,
   *          onFile: (file: File) => void, onRejected: (reason: string) => void}} options
   */
  constructor({ input, dropZone, onFile, onRejected }) {
    const take = (file) => {
      if (!file) return;
      if (!ACCEPTED_TYPES.has(file.type)) {
        onRejected(`"${file.name}" is not a JPEG, PNG or WebP image.`);
        return;
      }
      onFile(file);
    };
    input.addEventListener("change", () => {
      take(input.files?.[0]);
      // Picking the same file again should work again.
      input.value = "";
    });
    dropZone.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types.includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      dropZone.classList.add("dragging");
    });
    dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
    dropZone.addEventListener("drop", (event) => {
      event.preventDefault();
      dropZone.classList.remove("dragging");
      take(event.dataTransfer?.files?.[0]);
    });
  }
}
