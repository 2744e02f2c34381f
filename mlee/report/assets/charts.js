/* mlee report: small SVG charts (scatter with rating regions, stacked bars, heatmap, lines).
 * No library: every chart is a few hundred SVG nodes. User strings only ever reach the DOM through
 * textContent / setAttribute, never through innerHTML. */
"use strict";
(function (global) {
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    if (attrs) for (const k of Object.keys(attrs)) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, str, attrs) {
    const t = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = str;
    return t;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  /* Number formatting with 3 significant digits, exponent for very small/large values. */
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return "n/a";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    if (a >= 100) return v.toFixed(a >= 1000 ? 0 : 1);
    return Number(v.toPrecision(3)).toString();
  }

  /* A scale maps data to pixels; log scales need positive data (non-positive values are not drawable). */
  function makeScale(lo, hi, r0, r1, log) {
    if (log) {
      const l0 = Math.log10(lo), l1 = Math.log10(hi);
      const f = (v) => r0 + (Math.log10(v) - l0) / (l1 - l0 || 1) * (r1 - r0);
      f.log = true; f.lo = lo; f.hi = hi;
      return f;
    }
    const f = (v) => r0 + (v - lo) / (hi - lo || 1) * (r1 - r0);
    f.log = false; f.lo = lo; f.hi = hi;
    return f;
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const n = raw / mag;
    return (n >= 5 ? 10 : n >= 2 ? 5 : n >= 1 ? 2 : 1) * mag;
  }

  function ticks(scale, count) {
    const out = [];
    if (scale.log && scale.hi / scale.lo < 3) {
      // A narrow log axis is nearly linear: decade ticks would leave one label at most.
      const step = niceStep(scale.hi - scale.lo, count);
      for (let v = Math.ceil(scale.lo / step) * step; v <= scale.hi; v += step) if (v > 0) out.push(v);
      return out;
    }
    if (scale.log) {
      const e0 = Math.floor(Math.log10(scale.lo)), e1 = Math.ceil(Math.log10(scale.hi));
      const span = Math.log10(scale.hi / scale.lo);
      const mult = span > 6 ? [1] : span > 2.5 ? [1, 3] : span > 1.3 ? [1, 2, 5] : [1, 2, 3, 5, 7];
      for (let e = e0; e <= e1; e++) {
        for (const m of mult) {
          const v = m * Math.pow(10, e);
          if (v >= scale.lo && v <= scale.hi) out.push(v);
        }
      }
      return out;
    }
    const step = niceStep(scale.hi - scale.lo, count);
    for (let v = Math.ceil(scale.lo / step) * step; v <= scale.hi + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return out;
  }

  /* Extent of finite values, padded; for log scales only positive values count. */
  function extent(values, log) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) {
      if (v === null || !isFinite(v) || (log && v <= 0)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo === Infinity) return log ? [0.1, 10] : [0, 1];
    if (log) {
      if (lo === hi) return [lo / 2, hi * 2];
      const pad = Math.pow(hi / lo, 0.05);
      return [lo / pad, hi * pad];
    }
    if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
    const pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }

  const SHAPES = ["circle", "square", "diamond", "triangle-up", "triangle-down", "cross", "x", "star",
    "pentagon", "hexagon", "triangle-left", "triangle-right"];

  function polygon(n, r, rot) {
    const pts = [];
    for (let i = 0; i < n; i++) {
      const a = rot + i * 2 * Math.PI / n;
      pts.push((r * Math.cos(a)).toFixed(2) + "," + (r * Math.sin(a)).toFixed(2));
    }
    return "M" + pts.join("L") + "Z";
  }

  /* Path data of a marker shape centred on 0,0 with radius r. */
  function symbolPath(shape, r) {
    const s = r * 0.88, t = r * 0.35;
    switch (shape) {
      case "square": return `M${-s},${-s}H${s}V${s}H${-s}Z`;
      case "diamond": return polygon(4, r * 1.2, -Math.PI / 2);
      case "triangle-up": return polygon(3, r * 1.2, -Math.PI / 2);
      case "triangle-down": return polygon(3, r * 1.2, Math.PI / 2);
      case "triangle-left": return polygon(3, r * 1.2, Math.PI);
      case "triangle-right": return polygon(3, r * 1.2, 0);
      case "pentagon": return polygon(5, r * 1.1, -Math.PI / 2);
      case "hexagon": return polygon(6, r * 1.05, 0);
      case "cross": return `M${-t},${-r}H${t}V${-t}H${r}V${t}H${t}V${r}H${-t}V${t}H${-r}V${-t}H${-t}Z`;
      case "x": return `M${-r},${-r + t}L${-r + t},${-r}L0,${-t}L${r - t},${-r}L${r},${-r + t}L${t},0L${r},${r - t}` +
        `L${r - t},${r}L0,${t}L${-r + t},${r}L${-r},${r - t}L${-t},0Z`;
      case "star": {
        const pts = [];
        for (let i = 0; i < 10; i++) {
          const a = -Math.PI / 2 + i * Math.PI / 5, rr = i % 2 ? r * 0.5 : r * 1.25;
          pts.push((rr * Math.cos(a)).toFixed(2) + "," + (rr * Math.sin(a)).toFixed(2));
        }
        return "M" + pts.join("L") + "Z";
      }
      default: return `M${r},0A${r},${r} 0 1,1 ${-r},0A${r},${r} 0 1,1 ${r},0Z`;
    }
  }

  function frame(svg, w, h, m) {
    clear(svg);
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    return { x0: m.l, x1: w - m.r, y0: h - m.b, y1: m.t };
  }

  function drawAxes(svg, box, xs, ys, xLabel, yLabel) {
    const g = el("g", { class: "axes" }, svg);
    for (const v of ticks(xs, 6)) {
      const x = xs(v);
      el("line", { x1: x, x2: x, y1: box.y0, y2: box.y1, class: "grid" }, g);
      text(g, x, box.y0 + 16, fmt(v), { "text-anchor": "middle", class: "tick" });
    }
    for (const v of ticks(ys, 6)) {
      const y = ys(v);
      el("line", { x1: box.x0, x2: box.x1, y1: y, y2: y, class: "grid" }, g);
      text(g, box.x0 - 6, y + 4, fmt(v), { "text-anchor": "end", class: "tick" });
    }
    el("rect", { x: box.x0, y: box.y1, width: box.x1 - box.x0, height: box.y0 - box.y1, class: "plotframe" }, g);
    text(g, (box.x0 + box.x1) / 2, box.y0 + 36, xLabel, { "text-anchor": "middle", class: "axislabel" });
    text(g, 0, 0, yLabel, { "text-anchor": "middle", class: "axislabel",
      transform: `translate(${box.x0 - 52},${(box.y0 + box.y1) / 2}) rotate(-90)` });
  }

  /* Scatter plot. opts: points [{x, y, color, shape, key, ring}], xLabel, yLabel, xLog, yLog,
   * xBands/yBands [{lo, hi, r}] rating intervals on each axis, bandColor(rx, ry), onEnter(key, evt),
   * onLeave(), onClick(key). Returns the number of markers drawn. */
  function scatter(svg, opts) {
    const W = 760, H = 500;
    const box = frame(svg, W, H, { l: 70, r: 16, t: 12, b: 48 });
    const pts = opts.points.filter((p) => isFinite(p.x) && isFinite(p.y) &&
      !(opts.xLog && p.x <= 0) && !(opts.yLog && p.y <= 0));
    const xe = extent(pts.map((p) => p.x), opts.xLog), ye = extent(pts.map((p) => p.y), opts.yLog);
    const xs = makeScale(xe[0], xe[1], box.x0, box.x1, opts.xLog);
    const ys = makeScale(ye[0], ye[1], box.y0, box.y1, opts.yLog);
    const clipId = "clip-" + (svg.id || "scatter");
    const defs = el("defs", null, svg);
    const clip = el("clipPath", { id: clipId }, defs);
    el("rect", { x: box.x0, y: box.y1, width: box.x1 - box.x0, height: box.y0 - box.y1 }, clip);
    const bg = el("g", { class: "regions", "clip-path": `url(#${clipId})` }, svg);
    if (opts.xBands && opts.yBands) {
      // Pixel of a band edge, clamped to the plot; infinite edges and non-positive edges on a log axis go to
      // the end of the axis they point at.
      const px = (s, v, a, b) => {
        const p = !isFinite(v) ? s(v > 0 ? s.hi : s.lo) : (s.log && v <= 0 ? s(s.lo) : s(v));
        return Math.max(Math.min(a, b), Math.min(Math.max(a, b), p));
      };
      for (const bx of opts.xBands) {
        const xa = px(xs, bx.lo, box.x0, box.x1), xb = px(xs, bx.hi, box.x0, box.x1);
        if (xb - xa < 0.01) continue;
        for (const by of opts.yBands) {
          const ya = px(ys, by.lo, box.y1, box.y0), yb = px(ys, by.hi, box.y1, box.y0);
          if (Math.abs(yb - ya) < 0.01) continue;
          el("rect", { x: xa, y: Math.min(ya, yb), width: xb - xa, height: Math.abs(yb - ya),
            fill: opts.bandColor(bx.r, by.r), class: "region", "data-rating": `${bx.r}${by.r}` }, bg);
        }
      }
    }
    drawAxes(svg, box, xs, ys, opts.xLabel, opts.yLabel);
    const g = el("g", { class: "markers", "clip-path": `url(#${clipId})` }, svg);
    for (const p of pts) {
      const m = el("path", { d: symbolPath(p.shape, p.ring ? 7.5 : 6),
        transform: `translate(${xs(p.x).toFixed(2)},${ys(p.y).toFixed(2)})`, fill: p.color,
        class: "marker" + (p.ring ? " ref" : "") + (p.selected ? " selected" : ""), "data-key": p.key }, g);
      m.addEventListener("mouseenter", (e) => opts.onEnter && opts.onEnter(p.key, e));
      m.addEventListener("mouseleave", () => opts.onLeave && opts.onLeave());
      m.addEventListener("click", () => opts.onClick && opts.onClick(p.key));
    }
    return pts.length;
  }

  /* Horizontal stacked bars. rows [{label, counts: [n per category]}], colors, categories. */
  function stackedBars(svg, rows, categories, colors, onClick) {
    const rowH = 26, W = 520, labelW = 200;
    const H = Math.max(60, rows.length * rowH + 40);
    const box = frame(svg, W, H, { l: labelW, r: 40, t: 8, b: 30 });
    const max = Math.max(1, ...rows.map((r) => r.counts.reduce((a, b) => a + b, 0)));
    const xs = makeScale(0, max, box.x0, box.x1, false);
    const g = el("g", null, svg);
    rows.forEach((row, i) => {
      const y = box.y1 + i * rowH + 4;
      const lab = text(g, box.x0 - 8, y + 13, row.label.length > 30 ? row.label.slice(0, 29) + "…" : row.label,
        { "text-anchor": "end", class: "tick" });
      el("title", null, lab).textContent = row.label;
      let acc = 0;
      row.counts.forEach((n, c) => {
        if (!n) return;
        const seg = el("rect", { x: xs(acc), y: y, width: xs(acc + n) - xs(acc), height: rowH - 8, fill: colors[c],
          class: "bar", "data-rating": categories[c], "data-count": n }, g);
        el("title", null, seg).textContent = `${row.label}: ${n} rated ${categories[c]}`;
        if (onClick) seg.addEventListener("click", () => onClick(row.label, categories[c]));
        if (xs(acc + n) - xs(acc) > 14) {
          text(g, (xs(acc) + xs(acc + n)) / 2, y + 13, String(n), { "text-anchor": "middle", class: "barlabel" });
        }
        acc += n;
      });
      text(g, xs(acc) + 4, y + 13, String(acc), { class: "tick" });
    });
    for (const v of ticks(xs, 5)) {
      if (Math.abs(v - Math.round(v)) > 1e-9) continue;
      text(g, xs(v), box.y0 + 18, String(v), { "text-anchor": "middle", class: "tick" });
    }
    return rows.length;
  }

  /* Diverging colour for a correlation in [-1, 1]: blue (negative), white, red (positive). */
  function corrColor(r) {
    if (r === null || !isFinite(r)) return "#e8e8e8";
    const t = Math.min(1, Math.abs(r));
    const base = r >= 0 ? [214, 96, 77] : [67, 147, 195];
    const c = base.map((v) => Math.round(255 + (v - 255) * t));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  /* Correlation heatmap. labels [n], matrix [n][n] of r or null, counts [n][n] of pairs. */
  function heatmap(svg, labels, matrix, counts) {
    const n = labels.length, cell = Math.max(34, Math.min(60, 420 / Math.max(1, n))), labelW = 150;
    // Room on the right for the last column's label, which leans out at 45 degrees.
    const W = labelW + n * cell + labelW * 0.6, H = labelW * 0.75 + n * cell + 10;
    frame(svg, W, H, { l: 0, r: 0, t: 0, b: 0 });
    const top = labelW * 0.75;
    const g = el("g", null, svg);
    labels.forEach((lab, i) => {
      text(g, labelW - 6, top + i * cell + cell / 2 + 4, lab, { "text-anchor": "end", class: "tick" });
      text(g, 0, 0, lab, { class: "tick",
        transform: `translate(${labelW + i * cell + cell / 2 + 4},${top - 6}) rotate(-45)` });
    });
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const r = matrix[i][j];
        const rect = el("rect", { x: labelW + j * cell, y: top + i * cell, width: cell - 1, height: cell - 1,
          fill: corrColor(r), class: "cell", "data-r": r === null ? "" : r.toFixed(4) }, g);
        el("title", null, rect).textContent = `${labels[i]} / ${labels[j]}: ` +
          (r === null ? `n/a (${counts[i][j]} pairs)` : `r = ${r.toFixed(3)} over ${counts[i][j]} records`);
        text(g, labelW + j * cell + cell / 2, top + i * cell + cell / 2 + 4, r === null ? "n/a" : r.toFixed(2),
          { "text-anchor": "middle", class: "celllabel" + (r !== null && Math.abs(r) > 0.6 ? " light" : "") });
      }
    }
    return n * n;
  }

  const LINE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];

  /* Line chart. series [{name, t: [...], y: [...]}]; returns the number of series drawn. */
  function lines(svg, series, xLabel, yLabel, legend) {
    const box = frame(svg, 760, 300, { l: 70, r: 16, t: 12, b: 48 });
    const all = series.filter((s) => s.t.length > 0);
    const xe = extent([].concat(...all.map((s) => s.t)), false);
    const ye = extent([0].concat(...all.map((s) => s.y)), false);
    const xs = makeScale(Math.max(0, xe[0]), xe[1], box.x0, box.x1, false);
    const ys = makeScale(ye[0], ye[1], box.y0, box.y1, false);
    drawAxes(svg, box, xs, ys, xLabel, yLabel);
    if (legend) clear(legend);
    all.forEach((s, i) => {
      const color = LINE_COLORS[i % LINE_COLORS.length];
      let d = "", pen = false;
      for (let k = 0; k < s.t.length; k++) {
        const ok = s.y[k] !== null && isFinite(s.y[k]) && isFinite(s.t[k]);
        if (ok) { d += (pen ? "L" : "M") + xs(s.t[k]).toFixed(1) + "," + ys(s.y[k]).toFixed(1); }
        pen = ok;
      }
      const path = el("path", { d: d, fill: "none", stroke: color, "stroke-width": 1.6, class: "trace" }, svg);
      el("title", null, path).textContent = s.name;
      if (legend) {
        const item = document.createElement("span");
        item.className = "legend-item";
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = color;
        item.appendChild(sw);
        item.appendChild(document.createTextNode(s.name));
        legend.appendChild(item);
      }
    });
    return all.length;
  }

  /* A small standalone SVG of one marker shape, for legends. */
  function shapeIcon(shape, color) {
    const svg = el("svg", { width: 14, height: 14, viewBox: "-8 -8 16 16", class: "shape-icon" });
    el("path", { d: symbolPath(shape, 5.5), fill: color || "#555" }, svg);
    return svg;
  }

  global.MleeCharts = { scatter, stackedBars, heatmap, lines, shapeIcon, fmt, SHAPES, corrColor, extent };
})(window);
