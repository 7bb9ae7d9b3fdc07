/* The report pages' charts (console/templates/report.html): each canvas names the JSON
   configuration beside it (console/report_charts.py); this adds colours and draws it with
   the vendored Chart.js. The table under the charts holds the same figures in words. */
(function () {
  "use strict";
  // Distinct for the common colour-vision deficiencies; lines are told apart by dashes too.
  var COLOURS = ["#0b5cad", "#d55e00", "#009e73", "#cc79a7", "#56b4e9", "#e69f00", "#3d3d3d"];
  var DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];
  var POINTS = ["circle", "rect", "triangle", "rectRot"];

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var config = JSON.parse(source.textContent);
    config.data.datasets.forEach(function (set, i) {
      var colour = COLOURS[i % COLOURS.length];
      set.borderColor = colour;
      set.backgroundColor = config.type === "line" ? colour : colour + "cc";
      if (config.type === "line") {
        set.borderDash = DASHES[i % DASHES.length];
        set.pointStyle = POINTS[i % POINTS.length];
        set.pointRadius = 4;
        set.borderWidth = 2;
      }
    });
    // Legend markers as the lines draw their points, all of one size.
    config.options.plugins.legend.labels = config.type === "line"
      ? { usePointStyle: true, pointStyleWidth: 14, boxHeight: 8 }
      : { boxWidth: 14, boxHeight: 14 };
    new Chart(canvas, config);
  }

  document.querySelectorAll("canvas[data-chart]").forEach(draw);
})();
