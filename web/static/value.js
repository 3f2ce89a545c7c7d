// The customer value pages' charts (the pyramid, shares, segments, types, the six parts and
// the holdout check), drawn from the JSON data blocks the pages embed: the CSP forbids inline
// scripts. Every figure is also in a table on the page. The R × F grid's cells are shaded
// here from their data-heat (0–1), through the CSS object model, which the CSP allows.
(function () {
  const layers = ["#0f766e", "#65a30d", "#94a3b8", "#b91c1c"];
  const palette = ["#0f766e", "#d97706", "#4338ca", "#b91c1c", "#0369a1", "#65a30d", "#a21caf", "#57534e", "#0891b2", "#ca8a04", "#be123c", "#94a3b8"];
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  const grouped = (v) => Number(v).toLocaleString();

  function data(id) {
    const source = document.getElementById(id);
    return source ? JSON.parse(source.textContent) : null;
  }

  function canvas(id) {
    return document.getElementById(id);
  }

  function pyramid(d) {
    // Floating bars centred on zero: each layer as wide as its members, the top layer first.
    if (canvas("chart-value-pyramid")) new Chart(canvas("chart-value-pyramid"), {
      type: "bar",
      data: {
        labels: d.labels,
        datasets: [{
          label: d.text.members,
          data: d.members.map((n) => [-n / 2, n / 2]),
          backgroundColor: layers,
          barPercentage: 1,
          categoryPercentage: 0.95,
        }],
      },
      options: {
        ...common,
        indexAxis: "y",
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (c) => `${d.text.members}: ${grouped(d.members[c.dataIndex])}` } },
        },
        // The widths compare the layers; the counts are in the tooltip and the table.
        scales: { x: { ticks: { display: false }, grid: { display: false } } },
      },
    });
    if (canvas("chart-value-shares")) new Chart(canvas("chart-value-shares"), {
      type: "bar",
      data: {
        labels: [d.text.member_share, d.text.value_share],
        datasets: d.labels.map((label, i) => ({
          label: label,
          data: [d.member_share[i], d.value_share[i]],
          backgroundColor: layers[i % layers.length],
        })),
      },
      options: {
        ...common,
        indexAxis: "y",
        scales: {
          x: { stacked: true, ticks: { callback: (v) => `${v}%` } },
          y: { stacked: true },
        },
      },
    });
  }

  function counts(id, d) {
    if (!canvas(id)) return;
    new Chart(canvas(id), {
      type: "bar",
      data: {
        labels: d.labels,
        datasets: [{
          label: d.text.members,
          data: d.members,
          backgroundColor: d.labels.map((_, i) => palette[i % palette.length]),
        }],
      },
      options: {
        ...common,
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { callback: grouped } } },
      },
    });
  }

  function clv(d) {
    if (!canvas("chart-value-clv")) return;
    new Chart(canvas("chart-value-clv"), {
      type: "bar",
      data: {
        labels: d.labels,
        datasets: d.parts.map((p, i) => ({
          label: p.name,
          data: p.values,
          backgroundColor: palette[i % palette.length],
        })),
      },
      options: {
        ...common,
        scales: {
          x: { stacked: true },
          y: { stacked: true, title: { display: true, text: d.text.y }, ticks: { callback: grouped } },
        },
      },
    });
  }

  function holdout(d) {
    if (!canvas("chart-value-holdout")) return;
    new Chart(canvas("chart-value-holdout"), {
      data: {
        labels: d.labels,
        datasets: [
          { type: "bar", label: d.text.actual, data: d.actual, backgroundColor: "#94a3b8" },
          { type: "line", label: d.text.predicted, data: d.predicted, borderColor: "#0f766e", backgroundColor: "#0f766e", spanGaps: true },
        ],
      },
      options: {
        ...common,
        scales: {
          x: { title: { display: true, text: d.text.x } },
          y: { beginAtZero: true, title: { display: true, text: d.text.y } },
        },
      },
    });
  }

  function shade() {
    document.querySelectorAll("td.heat[data-heat]").forEach((cell) => {
      const heat = Math.max(0, Math.min(1, Number(cell.getAttribute("data-heat")) || 0));
      cell.style.backgroundColor = `rgba(15, 118, 110, ${(0.08 + heat * 0.6).toFixed(3)})`;
    });
  }

  function draw() {
    shade();
    if (!window.Chart) return;
    const d = data("value-chart-data");
    if (d && d.kind === "pyramid") pyramid(d);
    if (d && d.kind === "rfm") counts("chart-value-segments", d);
    if (d && d.kind === "types") counts("chart-value-types", d);
    if (d && d.kind === "clv") clv(d);
    const h = data("value-holdout-data");
    if (h) holdout(h);
  }

  if (document.readyState === "complete") draw();
  else window.addEventListener("load", draw);
})();
