// Draws the charts whose data the page embeds as JSON (no inline scripts: the CSP forbids them).
(function () {
  function draw() {
    const source = document.getElementById("roi-chart-data");
    if (!source || !window.Chart) return;
    const d = JSON.parse(source.textContent);
    // The series' names in the page's language, when the page gives them (the ROI report).
    const words = document.getElementById("roi-chart-text");
    const text = Object.assign(
      { ratio: "Revenue per 1 of cost", budget: "Budget", cost: "Approved cost", revenue: "Revenue", month_cost: "Cost" },
      words ? JSON.parse(words.textContent) : {},
    );
    const teal = "#0f766e", slate = "#94a3b8", amber = "#d97706";
    const money = { ticks: { callback: (v) => Number(v).toLocaleString() } };
    const common = { responsive: true, maintainAspectRatio: false, animation: false };
    const el = (id) => document.getElementById(id);
    if (el("chart-ratio")) new Chart(el("chart-ratio"), {
      type: "bar",
      data: { labels: d.labels, datasets: [{ label: text.ratio, data: d.ratio, backgroundColor: teal }] },
      options: { ...common, plugins: { legend: { display: false } } },
    });
    if (el("chart-budget")) new Chart(el("chart-budget"), {
      type: "bar",
      data: { labels: d.labels, datasets: [
        { label: text.budget, data: d.budget, backgroundColor: slate },
        { label: text.cost, data: d.cost, backgroundColor: amber },
      ] },
      options: { ...common, scales: { y: money } },
    });
    if (d.months && el("chart-months")) {
      new Chart(el("chart-months"), {
        type: d.months.length > 2 ? "line" : "bar",
        data: { labels: d.months, datasets: [
          { label: text.revenue, data: d.month_revenue, borderColor: teal, backgroundColor: teal },
          { label: text.month_cost, data: d.month_cost, borderColor: amber, backgroundColor: amber },
        ] },
        options: { ...common, scales: { y: money } },
      });
    }
  }
  if (document.readyState === "complete") draw();
  else window.addEventListener("load", draw);
})();
