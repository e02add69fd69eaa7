// keygate console: small enhancements over pages that work without this script.
"use strict";

// A page the browser restores from its back/forward cache is the page as it was, secrets and
// all, never asked of keygate again: load it afresh instead, so that a one-time view says it
// was shown already and every page shows what is true now.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: copy the text of the element they name.
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (_) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(() => { button.textContent = button.dataset.label || "Copy"; }, 2500);
    });
  }

  // Permission shortcuts: tick every (read) permission one may grant, without a round trip.
  for (const button of document.querySelectorAll("button[data-preset]")) {
    button.addEventListener("click", (event) => {
      const form = button.closest("form");
      if (!form) return;
      event.preventDefault();
      const readOnly = button.dataset.preset === "read_only";
      for (const box of form.querySelectorAll("input[type=checkbox][data-grantable]")) {
        if (box.disabled) continue;
        box.checked = box.dataset.api === "true" && (!readOnly || box.value.endsWith(":read"));
      }
    });
  }

  // Expiry: the date field matters only when "on a date" is chosen.
  const expiry = document.getElementById("expiry");
  const date = document.getElementById("expires-on");
  if (expiry && date) {
    const sync = () => { date.closest(".field").hidden = expiry.value !== "date"; };
    expiry.addEventListener("change", sync);
    sync();
  }
});
