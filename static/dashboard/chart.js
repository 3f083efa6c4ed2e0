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

// A rolling chart: push() appends one sample and drops those older than windowSeconds.
// One line of wall-clock time; uPlot's default adds a date row that crowds a small chart.
function clockLabels(u, splits) {
  const span = u.scales.x.max - u.scales.x.min;
  const opts = span > 300
    ? { hour: "2-digit", minute: "2-digit", hour12: false }
    : { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
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

// maxPoints thins a long series to every other sample, which keeps setData cheap for
// transactions that run for hours.
function liveChart(container, { height, series, axes, windowSeconds, maxPoints = 4000 }) {
  const columns = [[], ...series.map(() => [])];
  const opts = {
    width: Math.max(200, container.clientWidth),
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
      ...axes,
    ],
  };
  const plot = new uPlot(opts, columns, container);

  // uPlot draws at a fixed pixel width; follow the container, at most once per frame.
  let resizePending = false;
  new ResizeObserver(() => {
    if (resizePending) return;
    resizePending = true;
    requestAnimationFrame(() => {
      resizePending = false;
      const width = Math.max(200, container.clientWidth);
      if (width !== plot.width) plot.setSize({ width, height });
    });
  }).observe(container);

  return {
    push(t, values) {
      columns[0].push(t);
      values.forEach((v, i) => columns[i + 1].push(v));
      if (windowSeconds) {
        let drop = 0;
        while (drop < columns[0].length && columns[0][drop] < t - windowSeconds) drop += 1;
        if (drop) columns.forEach((c) => c.splice(0, drop));
      }
      if (columns[0].length > maxPoints) {
        columns.forEach((c, i) => (columns[i] = c.filter((_, j) => j % 2 === 0 || j === c.length - 1)));
      }
      plot.setData(columns);
      // Without a hovering cursor the legend shows the newest values instead of dashes.
      if (plot.cursor.left == null || plot.cursor.left < 0) plot.setLegend({ idx: columns[0].length - 1 });
    },
    reset() {
      columns.forEach((c) => (c.length = 0));
      plot.setData(columns);
    },
    get size() {
      return columns[0].length;
    },
  };
}

// Connected and charging stations (left axis), fleet kW and OCPP msgs/s (right axes).
export function fleetChart(container) {
  // A phone-width plot has no room for three axes; the legend still shows msgs/s.
  const roomy = container.clientWidth >= 480;
  return liveChart(container, {
    height: 170,
    windowSeconds: 600,
    series: [
      { label: "Connected", scale: "n", stroke: COLORS.green, value: fmt(0) },
      { label: "Charging", scale: "n", stroke: COLORS.blue, value: fmt(0) },
      { label: "kW", scale: "kw", stroke: COLORS.violet, value: fmt(1, " kW") },
      { label: "msgs/s", scale: "mps", stroke: COLORS.amber, value: fmt(1, "/s") },
    ],
    axes: [
      axis("n", 3, "stations", "#4b5563"),
      axis("kw", 1, "kW", COLORS.violet),
      { ...axis("mps", 1, "msgs/s", COLORS.amber), show: roomy },
    ],
  });
}

// Power (kW) and energy (kWh) of one transaction.
export function transactionChart(container) {
  return liveChart(container, {
    height: 160,
    windowSeconds: 0,
    series: [
      { label: "Power", scale: "kw", stroke: COLORS.blue, value: fmt(2, " kW") },
      { label: "Energy", scale: "kwh", stroke: COLORS.green, value: fmt(3, " kWh"), minMax: 0.1 },
    ],
    axes: [axis("kw", 3, "kW", COLORS.blue), axis("kwh", 1, "kWh", COLORS.green)],
  });
}
