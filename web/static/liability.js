// The points liability page's charts, drawn from the JSON the page embeds (no inline
// scripts: the CSP forbids them). Every figure is also in the page's tables.
(function () {
  const teal = "#0f766e", amber = "#d97706", slate = "#64748b", indigo = "#4338ca";
  const palette = ["#99f6e4", "#5eead4", "#2dd4bf", "#14b8a6", "#0d9488", "#93c5fd", "#60a5fa",
    "#3b82f6", "#fcd34d", "#fbbf24", "#f59e0b", "#d97706"];
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  const grouped = (v) => Number(v).toLocaleString();

  function curve(d) {
    const canvas = document.getElementById("chart-liability-curve");
    if (!canvas || !d) return;
    const cohorts = d.cohorts.map((c, i) => ({
      type: "line",
      label: c.label,
      data: c.shares,
      borderColor: palette[i % palette.length],
      backgroundColor: palette[i % palette.length],
      borderWidth: 1.5,
      pointRadius: 1.5,
      spanGaps: false,
    }));
    new Chart(canvas, {
      type: "line",
      data: {
        labels: d.ages,
        datasets: [
          {
            label: d.text.curve,
            data: d.curve,
            borderColor: indigo,
            backgroundColor: indigo,
            borderWidth: 4,
            pointRadius: 2,
          },
          ...cohorts,
        ],
      },
      options: {
        ...common,
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: {
          x: { title: { display: true, text: d.text.age } },
          y: { beginAtZero: true, ticks: { callback: (v) => `${grouped(v)}%` } },
        },
      },
    });
  }

  function overTime(d) {
    const canvas = document.getElementById("chart-liability-over-time");
    if (!canvas || !d) return;
    new Chart(canvas, {
      data: {
        labels: d.labels,
        datasets: [
          { type: "bar", label: d.text.current, data: d.current, backgroundColor: teal, yAxisID: "money", stack: "liability" },
          { type: "bar", label: d.text.non_current, data: d.non_current, backgroundColor: amber, yAxisID: "money", stack: "liability" },
          { type: "line", label: d.text.points, data: d.points, borderColor: slate, backgroundColor: slate, yAxisID: "points", pointRadius: 2 },
        ],
      },
      options: {
        ...common,
        scales: {
          x: { stacked: true },
          money: { type: "linear", position: "left", stacked: true, beginAtZero: true, title: { display: true, text: d.text.money_axis }, ticks: { callback: grouped } },
          points: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: d.text.points_axis }, ticks: { callback: grouped } },
        },
      },
    });
  }

  function draw() {
    const source = document.getElementById("liability-chart-data");
    if (!source || !window.Chart) return;
    const d = JSON.parse(source.textContent);
    curve(d.curve);
    overTime(d.over_time);
  }

  if (document.readyState === "complete") draw();
  else window.addEventListener("load", draw);
})();
