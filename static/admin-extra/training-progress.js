// Live progress of a training run on its admin page: polls a small JSON view, reloads when the run ends.
(function () {
  "use strict";
  const box = document.querySelector("[data-progress-url]");
  if (!box || box.dataset.finished === "true") return;
  async function tick() {
    try {
      const response = await fetch(box.dataset.progressUrl, { credentials: "same-origin" });
      const run = await response.json();
      const percent = Math.round(run.progress * 100);
      box.querySelector("progress").value = percent;
      box.querySelector(".percent").textContent = percent + "%";
      box.querySelector(".status").textContent = run.status_display;
      const chart = document.getElementById("run-chart");
      if (chart && run.chart) chart.innerHTML = run.chart;
      if (run.finished) { window.location.reload(); return; }
    } catch (error) {
      // the server restarting: try again
    }
    window.setTimeout(tick, 1000);
  }
  window.setTimeout(tick, 1000);
})();
