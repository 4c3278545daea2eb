/* Admin stats charts: data from our JSON endpoints, drawn with the vendored Chart.js. */
(function () {
  "use strict";
  var PEOPLE = "#2f6f3e", SCANNERS = "#9aa5b1", SIGNATURES = "#b3261e";

  function alertChart(data) {
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Clicks", data: data.datasets.clicks, backgroundColor: PEOPLE, stack: "clicks" },
          { label: "Link scanners", data: data.datasets.scanner_clicks, backgroundColor: SCANNERS, stack: "clicks" },
          { label: "Signatures", data: data.datasets.signatures, type: "line", borderColor: SIGNATURES, backgroundColor: SIGNATURES, tension: 0.2 }
        ]
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    };
  }

  function petitionChart(data) {
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Signatures that day", data: data.datasets.signatures, backgroundColor: SIGNATURES, yAxisID: "y" },
          { label: "Total", data: data.datasets.total, type: "line", borderColor: PEOPLE, backgroundColor: PEOPLE, yAxisID: "total" }
        ]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0 } },
          total: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, ticks: { precision: 0 } }
        }
      }
    };
  }

  function draw(canvas) {
    fetch(canvas.getAttribute("data-chart-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (!data.labels.length) {
          canvas.parentNode.textContent = "Nothing to chart yet.";
          return;
        }
        var config = canvas.getAttribute("data-chart-type") === "petition" ? petitionChart(data) : alertChart(data);
        canvas.setAttribute("data-drawn", "1");
        new window.Chart(canvas, config);
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll("canvas.stats-chart"), draw);
})();
