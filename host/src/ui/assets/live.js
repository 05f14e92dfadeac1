// Weir's dashboard script: keeps the page of a run that has not ended up to date. It follows
// the run's event stream and, on each event, fetches the page's main part again from the
// server (which renders every page; this script only swaps it in). Without JavaScript the
// page still works: it is current as of its load.
"use strict";

(() => {
  const main = document.querySelector("main[data-live-run]");
  if (!main || !window.EventSource || !window.fetch) return;
  const run = main.dataset.liveRun;
  const source = new EventSource(`/ui/runs/${encodeURIComponent(run)}/events`);
  let busy = false;
  let again = false;

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const response = await fetch(window.location.pathname, {
        headers: { "X-Weir-Fragment": "main" },
        credentials: "same-origin",
      });
      if (response.ok) main.innerHTML = await response.text();
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  // The journal's event kinds that change what the page shows; `done` ends the stream.
  const kinds = [
    "message", "run_created", "run_running", "step_started", "step_succeeded", "step_failed",
    "step_skipped", "review_opened", "review_decided", "review_closed", "run_cancelled",
  ];
  for (const kind of kinds) source.addEventListener(kind, refresh);
  source.addEventListener("done", () => {
    source.close();
    delete main.dataset.liveRun;
    refresh();
  });
  // The server going away: the page stays as it is; a reload follows the run again.
  source.addEventListener("shutdown", () => source.close());
})();
