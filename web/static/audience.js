// The audience page's charts, drawn from the JSON the page embeds (no inline scripts: the CSP
// forbids them). Every figure is also in the tables below them.
(function () {
  const teal = "#0f766e", amber = "#d97706", indigo = "#4338ca";
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  const grouped = (v) => Number(v).toLocaleString();

  function draw() {
    const source = document.getElementById("audience-chart-data");
    if (!source || !window.Chart) return;
    const d = JSON.parse(source.textContent);
    const profile = document.getElementById("chart-audience");
    if (profile && d.labels.length) new Chart(profile, {
      data: { labels: d.labels, datasets: [
        { type: "bar", label: d.text.members, data: d.members, backgroundColor: indigo, yAxisID: "members" },
        { type: "bar", label: d.text.revenue, data: d.revenue, backgroundColor: teal, yAxisID: "revenue" },
      ] },
      options: {
        ...common,
        scales: {
          members: { position: "left", beginAtZero: true, ticks: { precision: 0, callback: grouped },
                     title: { display: true, text: d.text.members } },
          revenue: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                     ticks: { callback: grouped }, title: { display: true, text: d.text.revenue } },
        },
      },
    });
    const response = document.getElementById("chart-audience-response");
    if (response && d.response_labels.length) new Chart(response, {
      type: "bar",
      data: { labels: d.response_labels, datasets: [
        { label: d.text.conversion, data: d.conversion, backgroundColor: amber },
      ] },
      options: {
        ...common,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, suggestedMax: 100, ticks: { callback: (v) => `${v}%` } } },
      },
    });
  }

  if (document.readyState === "complete") draw();
  else window.addEventListener("load", draw);
})();
