// Light progressive enhancement; every page works without it.
"use strict";

// A form sent once: its submit button is disabled while the page loads the answer.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.disabled = true;
  }
});

// A form shown again from the browser's cache can be sent again.
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-sent]")) {
    delete form.dataset.sent;
    for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = false;
  }
});

// Regions marked data-autorefresh="N" (the queue) reload their content every N seconds,
// unless the user is typing in them or the tab is hidden.
for (const region of document.querySelectorAll("[data-autorefresh]")) {
  const seconds = Math.max(10, Number(region.dataset.autorefresh) || 30);
  setInterval(async () => {
    if (document.hidden || region.contains(document.activeElement)) return;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = region.id && page.getElementById(region.id);
      if (fresh) region.replaceChildren(...fresh.childNodes);
    } catch (_) {
      // offline for a moment: keep what is shown
    }
  }, seconds * 1000);
}
