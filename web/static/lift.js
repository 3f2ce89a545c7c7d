// The lift page's charts, drawn from the JSON the page embeds (no inline scripts: the CSP
// forbids them). Every figure is also in the table and the figures above them.
(function () {
  const teal = "#0f766e", slate = "#94a3b8", amber = "#d97706", indigo = "#4338ca";
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  const grouped = (v) => Number(v).toLocaleString();

  function draw() {
    const source = document.getElementById("lift-chart-data");
    if (!source || !window.Chart) return;
    const d = JSON.parse(source.textContent);
    const conversion = document.getElementById("chart-lift-conversion");
    if (conversion) new Chart(conversion, {
      type: "bar",
      data: { labels: d.labels, datasets: [
        { label: d.text.conversion, data: d.conversion, backgroundColor: [teal, slate] },
      ] },
      options: {
        ...common,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { callback: (v) => `${v}%` } } },
      },
    });
    const revenue = document.getElementById("chart-lift-revenue");
    if (!revenue) return;
    // The two groups' revenue per member, and beside them the difference between them with
    // its interval as a floating bar from the low end to the high end.
    const labels = [...d.labels, d.text.difference];
    const datasets = [
      { type: "bar", label: d.text.rpm, data: [...d.rpm, null], backgroundColor: [teal, slate, teal] },
    ];
    if (d.interval) datasets.push({
      type: "bar", label: d.text.interval, data: [null, null, d.interval],
      backgroundColor: "rgba(217, 119, 6, 0.35)", borderColor: amber, borderWidth: 1,
    });
    if (d.difference !== null) datasets.push({
      type: "line", label: d.text.difference, data: [null, null, d.difference],
      borderColor: indigo, backgroundColor: indigo, pointRadius: 6, showLine: false,
    });
    new Chart(revenue, {
      data: { labels, datasets },
      options: {
        ...common,
        scales: { x: { stacked: true }, y: { ticks: { callback: grouped } } },
      },
    });
  }

  if (document.readyState === "complete") draw();
  else window.addEventListener("load", draw);
})();
