// The dashboard's charts, drawn from the JSON data blocks the page embeds (the CSP forbids
// inline scripts). Every figure is also written on the page as text or in a table.
(function () {
  const teal = "#0f766e", slate = "#94a3b8", amber = "#d97706", red = "#b91c1c", indigo = "#4338ca";
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  const grouped = { ticks: { callback: (v) => Number(v).toLocaleString() } };

  function data(id) {
    const source = document.getElementById(id);
    return source ? JSON.parse(source.textContent) : null;
  }

  function canvas(id) {
    return document.getElementById(id);
  }

  function marketing(d) {
    if (canvas("chart-spend")) new Chart(canvas("chart-spend"), {
      type: "bar",
      data: { labels: d.labels, datasets: [
        { label: d.names.budget, data: d.budget, backgroundColor: slate },
        { label: d.names.cost, data: d.cost, backgroundColor: amber },
        { label: d.names.revenue, data: d.revenue, backgroundColor: teal },
      ] },
      options: { ...common, scales: { y: grouped } },
    });
    if (canvas("chart-campaigns") && d.campaigns.length) new Chart(canvas("chart-campaigns"), {
      type: "bar",
      data: { labels: d.campaigns, datasets: [{
        label: d.names.roi,
        data: d.roi,
        backgroundColor: d.roi.map((v) => (v !== null && v < 0 ? red : teal)),
      }] },
      options: {
        ...common,
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { x: { ticks: { callback: (v) => `${Number(v).toLocaleString()}%` } } },
      },
    });
  }

  function finance(d) {
    if (!canvas("chart-ageing")) return;
    new Chart(canvas("chart-ageing"), {
      type: "bar",
      data: { labels: d.labels, datasets: [
        { label: d.names.approval, data: d.approval, backgroundColor: amber },
        { label: d.names.payment, data: d.payment, backgroundColor: teal },
      ] },
      options: { ...common, scales: { x: { stacked: true }, y: { ...grouped, stacked: true } } },
    });
  }

  function loyalty(d) {
    if (!canvas("chart-loyalty")) return;
    new Chart(canvas("chart-loyalty"), {
      data: { labels: d.labels, datasets: [
        { type: "bar", label: d.names.issued, data: d.issued, backgroundColor: teal, yAxisID: "points" },
        { type: "bar", label: d.names.redeemed, data: d.redeemed, backgroundColor: amber, yAxisID: "points" },
        { type: "bar", label: d.names.expired, data: d.expired, backgroundColor: slate, yAxisID: "points" },
        { type: "line", label: d.names.new_members, data: d.new_members, borderColor: indigo,
          backgroundColor: indigo, yAxisID: "members" },
      ] },
      options: {
        ...common,
        scales: {
          points: { ...grouped, position: "left", beginAtZero: true,
                    title: { display: true, text: d.names.points } },
          members: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                     ticks: { precision: 0 }, title: { display: true, text: d.names.members } },
        },
      },
    });
  }

  function draw() {
    if (!window.Chart) return;
    const m = data("dash-marketing-data"), f = data("dash-finance-data"), l = data("dash-loyalty-data");
    if (m && m.labels) marketing(m);
    if (f && f.labels) finance(f);
    if (l) loyalty(l);
  }

  if (document.readyState === "complete") draw();
  else window.addEventListener("load", draw);
})();
