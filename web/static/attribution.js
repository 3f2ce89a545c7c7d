// The attribution page's grouped bar charts (credits by model), drawn from the JSON the page
// embeds (no inline scripts: the CSP forbids them). The same figures are in the tables below.
(function () {
  const palette = ["#0f766e", "#d97706", "#4338ca", "#b91c1c", "#0369a1", "#65a30d", "#a21caf", "#57534e"];

  function chart(id, d, series, label) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: d.labels,
        datasets: d.models.map((m, i) => ({
          label: m.name,
          data: m[series],
          backgroundColor: palette[i % palette.length],
        })),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { title: { display: false, text: label } },
        scales: { y: { beginAtZero: true, ticks: { callback: (v) => Number(v).toLocaleString() } } },
      },
    });
  }

  function draw() {
    const source = document.getElementById("attribution-chart-data");
    if (!source || !window.Chart) return;
    const d = JSON.parse(source.textContent);
    chart("chart-attribution-conversions", d, "conversions", d.text.conversions);
    chart("chart-attribution-value", d, "value", d.text.value);
  }

  if (document.readyState === "complete") draw();
  else window.addEventListener("load", draw);
})();
