/* mlee report: page state, filters, the scatter plot, and the hook tests read (window.mleeReport).
 * Data comes from the inline JSON block #mlee-data; every user string goes to the DOM as text. */
"use strict";
(function (global) {
  const R = global.MleeRating, C = global.MleeCharts, V = global.MleeViews;
  const DATA = JSON.parse(document.getElementById("mlee-data").textContent);
  const COLORS = R.LETTERS.map((l) => DATA.colors[l]);
  const $ = (id) => document.getElementById(id);

  const tasks = Object.keys(DATA.spec.tasks).filter((t) => DATA.records.some((r) => r.task === t));
  const envs = [...new Set(DATA.records.map((r) => r.environment))].sort();
  const shapeOf = {};
  envs.forEach((e, i) => { shapeOf[e] = C.SHAPES[i % C.SHAPES.length]; });

  const state = {
    task: tasks[0] || null, datasets: null, envs: null, x: null, y: null, scale: "index", log: false,
    spec: JSON.parse(JSON.stringify(DATA.spec)), rated: null, sort: { key: "compound", dir: 1 },
    selected: null, invalid: {},
  };

  function metrics() { return state.task ? state.spec.tasks[state.task].metrics : []; }
  function metricByKey(k) { return metrics().find((m) => m.key === k); }

  function taskRecords() { return DATA.records.filter((r) => r.task === state.task); }

  function visible() {
    const out = [];
    DATA.records.forEach((rec, i) => {
      if (rec.task === state.task && state.datasets.has(rec.dataset) && state.envs.has(rec.environment)) out.push(i);
    });
    return out;
  }

  /* -- filters ------------------------------------------------------------------------------------------- */
  function checkboxList(container, values, selected, name) {
    V.clear(container);
    for (const v of values) {
      const lab = document.createElement("label");
      lab.className = "check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = selected.has(v);
      box.value = v;
      box.dataset.filter = name;
      box.addEventListener("change", () => {
        if (box.checked) selected.add(v); else selected.delete(v);
        render();
      });
      lab.appendChild(box);
      if (name === "environment") lab.appendChild(C.shapeIcon(shapeOf[v]));
      lab.appendChild(document.createTextNode(v));
      container.appendChild(lab);
    }
  }

  function setTask(task) {
    state.task = task;
    const recs = taskRecords();
    const datasets = [...new Set(recs.map((r) => r.dataset))].sort();
    const taskEnvs = [...new Set(recs.map((r) => r.environment))].sort();
    state.datasets = new Set(datasets);
    state.envs = new Set(taskEnvs);
    checkboxList($("f-dataset"), datasets, state.datasets, "dataset");
    checkboxList($("f-environment"), taskEnvs, state.envs, "environment");
    const ms = metrics();
    const pick = (want, fallback) => (ms.find((m) => m.key === want) ? want : fallback);
    // Default axes: energy against accuracy, but only metrics some record of the task has a value for
    // (synthetic inputs measure no accuracy: a plot of nothing helps nobody).
    const measured = ms.filter((m) => recs.some((r) => r.values[m.key] !== null && r.values[m.key] !== undefined));
    const usable = measured.length >= 2 ? measured : ms;
    const energy = usable.find((m) => /energy/.test(m.key));
    const acc = usable.find((m) => /top1|top_1|accuracy/.test(m.key));
    const xKey = energy ? energy.key : (usable[0] || {}).key;
    const other = usable.find((m) => m.key !== xKey && !/energy/.test(m.key)) || usable.find((m) => m.key !== xKey);
    state.x = pick(state.x, xKey);
    state.y = pick(state.y, acc ? acc.key : (other || usable[0] || {}).key);
    for (const id of ["x-metric", "y-metric"]) {
      const sel = $(id);
      V.clear(sel);
      for (const m of ms) V.option(sel, m.key, m.label + (m.unit ? ` [${m.unit}]` : ""));
    }
    $("x-metric").value = state.x;
    $("y-metric").value = state.y;
    V.buildEditor($("editor"), state, onSpecEdit);
  }

  function onSpecEdit() { rerate(); render(); }

  function rerate() {
    state.rated = R.rateRecords(DATA.records, state.spec);
  }

  /* -- scatter ------------------------------------------------------------------------------------------- */
  function axisValue(i, key) {
    return state.scale === "index" ? state.rated.rows[i].index[key] : DATA.records[i].values[key];
  }

  /* Rating intervals on one axis, in index or (for a single group) value terms. */
  function bands(m, idxs) {
    const b = m.boundaries;
    const idxBands = [{ lo: b[0], hi: Infinity, r: 0 }];
    for (let k = 1; k < b.length; k++) idxBands.push({ lo: b[k], hi: b[k - 1], r: k });
    idxBands.push({ lo: -Infinity, hi: b[b.length - 1], r: 4 });
    if (state.scale === "index") return idxBands;
    const groups = new Set(idxs.map((i) => R.groupKey(DATA.records[i])));
    if (groups.size !== 1) return null;
    const ref = state.rated.refs[[...groups][0]];
    const rv = ref ? ref[m.key] : null;
    if (rv && typeof rv === "object") {  /* index_base "range": the band edges are figures already */
      const e = R.valueBoundaries(rv, b, m.higher_is_better);
      const edges = m.higher_is_better ? [Infinity, ...e, -Infinity] : [0, ...e, Infinity];
      return idxBands.map((bd, k) => ({ lo: Math.min(edges[k], edges[k + 1]), hi: Math.max(edges[k], edges[k + 1]),
        r: bd.r }));
    }
    if (typeof rv !== "number" || !isFinite(rv) || rv <= 0) return null;
    return idxBands.map((bd) => {
      if (m.higher_is_better) return { lo: bd.lo * rv, hi: bd.hi * rv, r: bd.r };
      const lo = bd.hi === Infinity ? 0 : rv / bd.hi, hi = bd.lo <= 0 ? Infinity : rv / bd.lo;
      return { lo: lo, hi: hi, r: bd.r };
    });
  }

  function drawScatter(idxs) {
    const mx = metricByKey(state.x), my = metricByKey(state.y);
    const note = [];
    if (!mx || !my) {
      C.scatter($("scatter"), { points: [], xLabel: "", yLabel: "" });
      return 0;
    }
    const points = [];
    let missing = 0;
    for (const i of idxs) {
      const x = axisValue(i, mx.key), y = axisValue(i, my.key);
      if (x === null || y === null || x === undefined || y === undefined) { missing++; continue; }
      const rec = DATA.records[i];
      points.push({ x: x, y: y, key: i, color: COLORS[state.rated.rows[i].compound],
        shape: shapeOf[rec.environment], ring: rec.is_reference, selected: state.selected === i });
    }
    const xb = bands(mx, idxs), yb = bands(my, idxs);
    if (state.scale === "value" && (!xb || !yb)) {
      note.push("Rating regions on the value scale need one task, dataset and environment selected " +
        "(each environment has its own reference).");
    }
    const lab = (m) => `${m.label}${state.scale === "index" ? " (index)" : m.unit ? ` [${m.unit}]` : ""}`;
    const drawn = C.scatter($("scatter"), {
      points: points, xLabel: lab(mx), yLabel: lab(my), xLog: state.log, yLog: state.log,
      xBands: xb, yBands: yb,
      // Regions combine the two axis ratings as the compound does; two unweighted axes count equally.
      bandColor: (rx, ry) => COLORS[R.compound([rx, ry], mx.weight + my.weight > 0 ? [mx.weight, my.weight] : [1, 1],
        state.spec.compound)],
      onEnter: (i, e) => V.showTooltip($("tooltip"), hoverInfo(i), e),
      onLeave: () => V.hideTooltip($("tooltip")),
      onClick: (i) => select(i),
    });
    if (missing) note.push(`${missing} record(s) not shown: no ${missing === 1 ? "value" : "values"} for an axis metric.`);
    if (state.log && points.length > drawn) note.push(`${points.length - drawn} record(s) not shown: not positive on a log axis.`);
    $("scatter-note").textContent = note.join(" ");
    V.shapeLegend($("shape-legend"), envs.filter((e) => state.envs.has(e)), shapeOf);
    return drawn;
  }

  function hoverInfo(i) {
    const rec = DATA.records[i], row = state.rated.rows[i];
    const base = state.rated.refs[R.groupKey(rec)] || {};
    return { rec: rec, compound: R.LETTERS[row.compound], colors: COLORS,
      metrics: metrics().map((m) => ({ label: m.label, unit: m.unit, value: rec.values[m.key],
        index: row.index[m.key], rating: R.LETTERS[row.rating[m.key]], method: rec.methods[m.key],
        bounds: R.valueBoundaries(base[m.key], m.boundaries, m.higher_is_better), higher: m.higher_is_better })) };
  }

  /* -- the rest of the page -------------------------------------------------------------------------------- */
  function drawBars(idxs) {
    const rows = envs.filter((e) => state.envs.has(e)).map((e) => ({ label: e, counts: [0, 0, 0, 0, 0] }));
    const at = {};
    rows.forEach((r) => { at[r.label] = r; });
    for (const i of idxs) {
      const row = at[DATA.records[i].environment];
      if (row) row.counts[state.rated.rows[i].compound] += 1;
    }
    return C.stackedBars($("bars"), rows.filter((r) => r.counts.some((n) => n)), R.LETTERS, COLORS);
  }

  function pearson(a, b) {
    const n = a.length;
    let sa = 0, sb = 0;
    for (let k = 0; k < n; k++) { sa += a[k]; sb += b[k]; }
    const ma = sa / n, mb = sb / n;
    let cov = 0, va = 0, vb = 0;
    for (let k = 0; k < n; k++) {
      cov += (a[k] - ma) * (b[k] - mb); va += (a[k] - ma) ** 2; vb += (b[k] - mb) ** 2;
    }
    return va > 0 && vb > 0 ? cov / Math.sqrt(va * vb) : null;
  }

  function drawHeatmap(idxs) {
    const ms = metrics(), n = ms.length;
    const matrix = [], counts = [];
    for (let p = 0; p < n; p++) {
      matrix.push([]); counts.push([]);
      for (let q = 0; q < n; q++) {
        const a = [], b = [];
        for (const i of idxs) {
          const u = state.rated.rows[i].index[ms[p].key], v = state.rated.rows[i].index[ms[q].key];
          if (u !== null && v !== null && isFinite(u) && isFinite(v)) { a.push(u); b.push(v); }
        }
        counts[p].push(a.length);
        matrix[p].push(a.length >= 3 ? pearson(a, b) : null);
      }
    }
    return C.heatmap($("heatmap"), ms.map((m) => m.label), matrix, counts);
  }

  function select(i) {
    state.selected = i;
    render();
    const d = $("detail");
    if (d && d.scrollIntoView && i !== null) d.scrollIntoView({ block: "nearest" });
  }

  let stats = {};
  function render() {
    const t0 = performance.now();
    const idxs = visible();
    if (state.selected !== null && !idxs.includes(state.selected)) state.selected = null;
    stats = { visible: idxs.length, markers: drawScatter(idxs), bars: drawBars(idxs), cells: drawHeatmap(idxs) };
    stats.rows = V.table($("table"), idxs, { data: DATA, state: state, metrics: metrics(), colors: COLORS,
      onSort: (key) => { state.sort = { key: key, dir: state.sort.key === key ? -state.sort.dir : 1 }; render(); },
      onSelect: select });
    stats.labels = V.gallery($("gallery"), idxs, DATA, select);
    V.detail($("detail"), state.selected === null ? null : hoverInfo(state.selected), DATA, state.selected);
    V.specStatus($("spec-status"), state, DATA.spec, mismatches);
    $("count").textContent = `${idxs.length} of ${taskRecords().length} ${state.task || ""} records shown`;
    stats.render_ms = performance.now() - t0;
  }

  /* Records whose page rating differs from the one `mlee rate` computed (must be none for the spec as shipped). */
  let mismatches = [];
  function checkAgainstPython() {
    mismatches = [];
    DATA.records.forEach((rec, i) => {
      if (!rec.py) return;
      const row = state.rated.rows[i];
      let same = R.LETTERS[row.compound] === rec.py.compound;
      for (const k of Object.keys(rec.py.rating)) same = same && R.LETTERS[row.rating[k]] === rec.py.rating[k];
      if (!same) mismatches.push(rec.id);
    });
  }

  function init() {
    V.header(DATA);
    const taskSel = $("f-task");
    for (const t of tasks) V.option(taskSel, t, t);
    taskSel.addEventListener("change", () => { setTask(taskSel.value); render(); });
    $("x-metric").addEventListener("change", (e) => { state.x = e.target.value; render(); });
    $("y-metric").addEventListener("change", (e) => { state.y = e.target.value; render(); });
    for (const radio of document.querySelectorAll("input[name=scale]")) {
      radio.addEventListener("change", (e) => { state.scale = e.target.value; render(); });
    }
    $("log-axes").addEventListener("change", (e) => { state.log = e.target.checked; render(); });
    for (const [id, key, on] of [["ds-all", "datasets", true], ["ds-none", "datasets", false],
      ["env-all", "envs", true], ["env-none", "envs", false]]) {
      $(id).addEventListener("click", () => {
        const box = $(key === "datasets" ? "f-dataset" : "f-environment");
        for (const cb of box.querySelectorAll("input")) {
          cb.checked = on;
          if (on) state[key].add(cb.value); else state[key].delete(cb.value);
        }
        render();
      });
    }
    $("reset-spec").addEventListener("click", () => {
      state.spec = JSON.parse(JSON.stringify(DATA.spec));
      state.invalid = {};
      V.buildEditor($("editor"), state, onSpecEdit);
      rerate(); render();
    });
    $("download-spec").addEventListener("click", () => V.downloadSpec(state, DATA));
    rerate();
    checkAgainstPython();
    if (state.task) setTask(state.task);
    if (!state.task) { state.datasets = new Set(); state.envs = new Set(); }
    render();
  }

  global.mleeReport = {
    ready: false,
    state: state,
    stats: () => Object.assign({}, stats),
    mismatches: () => mismatches.slice(),
    adjustedSpec: () => R.adjustedSpecFile(DATA.spec_file, state.spec, DATA.spec),
    ratings: () => DATA.records.map((rec, i) => ({ id: rec.id, compound: R.LETTERS[state.rated.rows[i].compound],
      rating: Object.fromEntries(Object.entries(state.rated.rows[i].rating).map(([k, v]) => [k, R.LETTERS[v]])),
      index: state.rated.rows[i].index })),
  };
  try {
    init();
    global.mleeReport.ready = true;
    global.mleeReport.load_ms = performance.now();
    document.documentElement.dataset.ready = "1";
    // The frame after next is painted: from navigation start to there is what a user waits for.
    requestAnimationFrame(() => requestAnimationFrame(() => { global.mleeReport.painted_ms = performance.now(); }));
  } catch (err) {
    $("fatal").textContent = "The report could not be drawn: " + err.message;
    throw err;
  }
})(window);
