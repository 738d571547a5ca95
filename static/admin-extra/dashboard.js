/*
 * Admin dashboard charts: draws each figure's chart with the vendored Chart.js from the JSON the server
 * put in #dashboard-charts. No inline script, nothing from another host; the numbers are also in each
 * figure's table view.
 */
'use strict';

(() => {
  const data = document.getElementById('dashboard-charts');
  if (!data || typeof window.Chart === 'undefined') return;
  const charts = JSON.parse(data.textContent);
  // Colour-blind-safe, dark enough for paper (Okabe-Ito).
  const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00'];
  const INK = '#333333';
  const GRID = '#e5e5e5';
  window.Chart.defaults.color = INK;
  window.Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  window.Chart.defaults.animation = false; // printed pages and screenshots show the finished chart

  // Vertical dashed lines with a label: model versions entering service, the not-sure threshold.
  // Labels that would collide are moved down a line, so none overlap.
  const markerPlugin = {
    id: 'markers',
    afterDatasetsDraw(chart, _args, options) {
      const lines = options && options.lines;
      if (!lines || !lines.length) return;
      const { ctx, chartArea, scales } = chart;
      ctx.save();
      ctx.font = '11px ' + window.Chart.defaults.font.family;
      const placed = [];
      for (const line of lines) {
        const x = scales.x.getPixelForValue(line.index) + (line.offset || 0) * (scales.x.width / Math.max(1, chart.data.labels.length));
        ctx.strokeStyle = line.colour || '#555';
        ctx.setLineDash([4, 3]);
        ctx.beginPath();
        ctx.moveTo(x, chartArea.top);
        ctx.lineTo(x, chartArea.bottom);
        ctx.stroke();
        const width = ctx.measureText(line.label).width + 6;
        let row = 0;
        while (placed.some((p) => p.row === row && x < p.right && x + width > p.left)) row += 1;
        placed.push({ row, left: x, right: x + width });
        ctx.fillStyle = '#ffffff';
        ctx.fillRect(x + 1, chartArea.top + row * 14, width, 13);
        ctx.fillStyle = line.colour || '#555';
        ctx.fillText(line.label, x + 4, chartArea.top + 10 + row * 14);
      }
      ctx.restore();
    },
  };

  function datasets(spec, kind) {
    return spec.series.map((s, i) => ({
      label: s.name,
      data: s.values,
      borderColor: COLOURS[i % COLOURS.length],
      backgroundColor: kind === 'line' ? COLOURS[i % COLOURS.length] : COLOURS[i % COLOURS.length] + 'cc',
      borderWidth: kind === 'line' ? 2 : 0,
      pointRadius: spec.labels.length > 40 ? 0 : 2,
      tension: 0,
    }));
  }

  function markerLines(spec) {
    const lines = [];
    for (const m of spec.markers || []) {
      const index = spec.labels.indexOf(m.day);
      if (index >= 0) lines.push({ index, label: m.label, colour: '#555' });
    }
    if (spec.threshold) lines.push({ index: spec.threshold.index, offset: -0.5, label: spec.threshold.label, colour: '#D55E00' });
    return lines;
  }

  function options(spec) {
    const stacked = spec.kind === 'stacked';
    const percent = spec.unit === '%';
    return {
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: { display: spec.series.length > 1, position: 'bottom' },
        markers: { lines: markerLines(spec) },
        tooltip: { callbacks: percent ? { label: (c) => `${c.dataset.label}: ${c.parsed.y} %` } : {} },
      },
      scales: {
        x: {
          stacked,
          grid: { color: GRID },
          ticks: { autoSkip: true, maxRotation: 0, autoSkipPadding: 12 },
        },
        y: {
          stacked,
          beginAtZero: true,
          max: percent ? 100 : undefined,
          grid: { color: GRID },
          ticks: { precision: 0, callback: percent ? (v) => v + ' %' : undefined },
        },
      },
    };
  }

  for (const [key, spec] of Object.entries(charts)) {
    const canvas = document.getElementById('chart-' + key);
    if (!canvas || !spec) continue;
    const kind = spec.kind === 'line' ? 'line' : 'bar';
    const config = { type: kind, data: { labels: spec.labels, datasets: datasets(spec, kind) }, options: options(spec), plugins: [markerPlugin] };
    if (spec.kind === 'histogram') {
      config.data.datasets[0].categoryPercentage = 1;
      config.data.datasets[0].barPercentage = 1;
      config.data.datasets[0].borderWidth = 1;
      config.data.datasets[0].borderColor = '#ffffff';
    }
    new window.Chart(canvas, config);
  }

  // The custom dates matter only for a custom period.
  const period = document.getElementById('id_period');
  const dates = document.querySelector('.dashboard-period .custom-dates');
  if (period && dates) {
    const sync = () => { dates.hidden = period.value !== 'custom'; };
    period.addEventListener('change', sync);
    sync();
  }
})();
