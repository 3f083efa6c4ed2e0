// Small live time-series charts on top of the vendored uPlot (loaded as a classic script,
// so it is a global by the time these deferred modules run).

const uPlot = window.uPlot;

const COLORS = {
  green: "#3f8f5f",
  blue: "#2f6fb3",
  violet: "#7b5cc4",
  amber: "#b7791f",
};

function fmt(decimals, unit = "") {
  return (u, v) => (v == null ? "—" : `${v.toFixed(decimals)}${unit}`);
}

function axis(scale, side, label, stroke) {
  return {
    scale,
    side,
    label,
    stroke,
    size: 48,
    labelSize: 16,
    font: "11px system-ui, sans-serif",
    labelFont: "11px system-ui, sans-serif",
    grid: { show: side === 3, stroke: "#e6e8eb", width: 1 },
    ticks: { show: false },
  };
}

// One line of wall-clock time; uPlot's default adds a date row that crowds a small chart.
// Seconds are shown whenever the ticks are less than a minute apart: minutes alone then
// repeated ("00:00 00:00 00:00") on a chart of a few minutes.
function clockLabels(u, splits, axisIdx, space, incr) {
  const opts = incr < 60
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }
    : { hour: "2-digit", minute: "2-digit", hour12: false };
  return splits.map((v) => new Date(v * 1000).toLocaleTimeString([], opts));
}

// A minimum span keeps the first seconds from being drawn with millisecond ticks.
function timeRange(u, min, max) {
  const end = max ?? Date.now() / 1000;
  return [Math.min(min ?? end, end - 60), end];
}

// Counts and power are never negative; a floor keeps an all-zero series off the axis.
function zeroBased(floor) {
  return (u, min, max) => [0, Math.max((max ?? 0) * 1.1, floor)];
}

// A chart of points the server keeps (stations/series.py): load() draws the history a
// page starts with, push() adds a point and drops those older than windowSeconds.
// `axes(width)` gives the value axes for a width; the chart is rebuilt when that changes.
function liveChart(container, { height, series, axes, windowSeconds }) {
  let columns = [[], ...series.map(() => [])];
  const axesKey = (width) => axes(width).map((a) => a.show !== false).join();
  const options = (width) => ({
    width,
    height,
    padding: [8, 4, 0, 4],
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    legend: { live: true },
    scales: {
      x: { time: true, range: timeRange },
      ...Object.fromEntries(series.map((s) => [s.scale, { auto: true, range: zeroBased(s.minMax || 1) }])),
    },
    series: [
      { value: (u, v) => (v == null ? "—" : new Date(v * 1000).toLocaleTimeString()) },
      ...series.map((s) => ({ label: s.label, scale: s.scale, stroke: s.stroke, width: 1.5, value: s.value, points: { show: false } })),
    ],
    axes: [
      {
        font: "11px system-ui, sans-serif",
        stroke: "#6b7280",
        grid: { show: false },
        ticks: { show: false },
        size: 24,
        space: 64,
        values: clockLabels,
      },
      ...axes(width),
    ],
  });
  const widthNow = () => Math.max(200, container.clientWidth);
  let plot = new uPlot(options(widthNow()), columns, container);
  let key = axesKey(plot.width);

  function draw() {
    plot.setData(columns);
    // Without a hovering cursor the legend shows the newest values instead of dashes.
    if (plot.cursor.left == null || plot.cursor.left < 0) plot.setLegend({ idx: columns[0].length - 1 });
  }

  // uPlot draws at a fixed pixel width; follow the container, at most once per frame.
  let resizePending = false;
  new ResizeObserver(() => {
    if (resizePending) return;
    resizePending = true;
    requestAnimationFrame(() => {
      resizePending = false;
      const width = widthNow();
      if (axesKey(width) !== key) {
        // An axis comes or goes (a phone has no room for three): uPlot fixes its axes
        // when it is made, so make it again.
        plot.destroy();
        plot = new uPlot(options(width), columns, container);
        key = axesKey(width);
        draw();
      } else if (width !== plot.width) {
        plot.setSize({ width, height });
      }
    });
  }).observe(container);

  // For the browser tests: the times of the points drawn.
  container.chartTimes = () => columns[0].slice();

  function trim() {
    if (!windowSeconds || !columns[0].length) return;
    const newest = columns[0][columns[0].length - 1];
    let drop = 0;
    while (drop < columns[0].length && columns[0][drop] <= newest - windowSeconds) drop += 1;
    if (drop) columns.forEach((c) => c.splice(0, drop));
  }

  return {
    // points: [[t, v1, v2, ...], ...] oldest first; replaces what is drawn.
    load(points) {
      columns = [[], ...series.map(() => [])];
      for (const point of points || []) point.forEach((v, i) => columns[i].push(v));
      trim();
      draw();
    },
    push(t, values) {
      const times = columns[0];
      if (times.length && t <= times[times.length - 1]) {
        const at = times.lastIndexOf(t);
        if (at < 0) return; // older than the newest point: the history has it already
        values.forEach((v, i) => (columns[i + 1][at] = v));
      } else {
        times.push(t);
        values.forEach((v, i) => columns[i + 1].push(v));
      }
      trim();
      draw();
    },
    reset() {
      this.load([]);
    },
    get size() {
      return columns[0].length;
    },
  };
}

// Connected stations and charging EVSEs (left axis), fleet kW and OCPP msgs/s (right
// axes): the server's points, [t, connected, charging, kW, msgs/s].
export function fleetChart(container) {
  return liveChart(container, {
    height: 170,
    windowSeconds: 600,
    series: [
      { label: "Connected", scale: "n", stroke: COLORS.green, value: fmt(0) },
      { label: "Charging", scale: "n", stroke: COLORS.blue, value: fmt(0) },
      { label: "kW", scale: "kw", stroke: COLORS.violet, value: fmt(1, " kW") },
      { label: "msgs/s", scale: "mps", stroke: COLORS.amber, value: fmt(1, "/s") },
    ],
    // A phone-width plot has no room for three axes; the legend still shows msgs/s.
    axes: (width) => [
      axis("n", 3, "count", "#4b5563"),
      axis("kw", 1, "kW", COLORS.violet),
      { ...axis("mps", 1, "msgs/s", COLORS.amber), show: width >= 480 },
    ],
  });
}

// Power (kW) and energy (kWh) of one transaction: [t, kW, kWh].
export function transactionChart(container) {
  return liveChart(container, {
    height: 160,
    windowSeconds: 0,
    series: [
      { label: "Power", scale: "kw", stroke: COLORS.blue, value: fmt(2, " kW") },
      { label: "Energy", scale: "kwh", stroke: COLORS.green, value: fmt(3, " kWh"), minMax: 0.1 },
    ],
    axes: () => [axis("kw", 3, "kW", COLORS.blue), axis("kwh", 1, "kWh", COLORS.green)],
  });
}
