// Draws the charts whose data the page embeds as JSON (no inline scripts: the CSP forbids them).
(function () {
  function draw() {
    const source = document.getElementById("roi-chart-data");
    if (!source || !window.Chart) return;
    const d = JSON.parse(source.textContent);
    const teal = "#0f766e", slate = "#94a3b8", amber = "#d97706";
    const money = { ticks: { callback: (v) => Number(v).toLocaleString() } };
    const common = { responsive: true, maintainAspectRatio: false, animation: false };
    const el = (id) => document.getElementById(id);
    if (el("chart-ratio")) new Chart(el("chart-ratio"), {
      type: "bar",
      data: { labels: d.labels, datasets: [{ label: "Revenue per 1 of cost", data: d.ratio, backgroundColor: teal }] },
      options: { ...common, plugins: { legend: { display: false } } },
    });
    if (el("chart-budget")) new Chart(el("chart-budget"), {
      type: "bar",
      data: { labels: d.labels, datasets: [
        { label: "Budget", data: d.budget, backgroundColor: slate },
        { label: "Approved cost", data: d.cost, backgroundColor: amber },
      ] },
      options: { ...common, scales: { y: money } },
    });
    if (d.months && el("chart-months")) {
      new Chart(el("chart-months"), {
        type: d.months.length > 2 ? "line" : "bar",
        data: { labels: d.months, datasets: [
          { label: "Revenue", data: d.month_revenue, borderColor: teal, backgroundColor: teal },
          { label: "Cost", data: d.month_cost, borderColor: amber, backgroundColor: amber },
        ] },
        options: { ...common, scales: { y: money } },
      });
    }
  }
  if (document.readyState === "complete") draw();
  else window.addEventListener("load", draw);
})();
