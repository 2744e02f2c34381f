/* mlee report: the HTML parts of the page (header, tooltip, table, labels, detail, spec editor).
 * All user strings are set with textContent; links only ever point at relative paths chosen by mlee. */
"use strict";
(function (global) {
  const C = global.MleeCharts, R = global.MleeRating;

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function h(tag, attrs, children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "class") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      }
    }
    for (const c of children || []) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return node;
  }

  function option(select, value, label) { select.appendChild(h("option", { value: value, text: label })); }

  /* "letters" or "stars" (the spec's display, set by header() when the page loads). */
  let display = "letters";

  function chip(letter, colors) {
    const number = R.LETTERS.indexOf(letter);
    const s = h("span", { class: "chip", text: display === "stars" && number >= 0 ? R.starText(number) : letter });
    s.style.background = colors[R.LETTERS.indexOf(letter)];
    return s;
  }

  function valueText(v, unit, method) {
    if (v === null || v === undefined) return "not measured";
    return (method === "estimate" ? "≈" : "") + C.fmt(v) + (unit ? " " + unit : "");
  }

  function header(data) {
    display = data.spec.display || "letters";
    document.getElementById("title").textContent = data.title;
    document.title = data.title;
    const s = data.spec;
    const est = data.records.filter((r) => r.estimated).length;
    const parts = [`${data.records.length} rated records from ${data.database}`,
      `spec ${s.name} v${s.version} (sha256 ${s.sha256.slice(0, 12)}…)`, `compound: ${R.MODES[s.compound] || s.compound}`,
      `mlee ${data.mlee_version}`];
    document.getElementById("subtitle").textContent = parts.join(" · ");
    const note = document.getElementById("estimate-note");
    if (est) {
      note.textContent = `${est} of ${data.records.length} records hold estimated energy (a power model such as ` +
        "codecarbon's, not a measurement): their energy values are marked ≈ and \"estimate\".";
    } else {
      note.remove();
    }
    for (const n of data.notes || []) document.getElementById("notes").appendChild(h("li", { text: n }));
  }

  /* "A < 0.476 · B < 0.756 · C < 0.992 · D < 1.74 Ws": the boundaries in the metric's unit for this group. */
  function boundsText(m) {
    if (!m.bounds) return "";
    const op = m.higher ? ">" : "<";
    const name = (k) => (display === "stars" ? `${5 - k}\u2605` : R.LETTERS[k]);
    return m.bounds.map((b, k) => (b === null ? "" : `${name(k)} ${op} ${C.fmt(b)}`)).filter((x) => x)
      .join(" · ") + (m.unit ? " " + m.unit : "");
  }

  function metricTable(info, withWeights, state, withBounds) {
    const t = h("table", { class: "metrics" });
    t.appendChild(h("tr", null, ["Metric", "Value", "Index", "Rating"].concat(withWeights ? ["Weight"] : [])
      .concat(["Method"]).concat(withBounds ? ["Boundaries here"] : []).map((c) => h("th", { text: c }))));
    info.metrics.forEach((m, k) => {
      const measured = m.value !== null && m.value !== undefined;
      const row = h("tr", null, [h("td", { text: m.label }),
        h("td", { text: valueText(m.value, m.unit, m.method), class: measured ? "" : "muted" }),
        h("td", { text: m.index === null || m.index === undefined ? (measured ? "n/a" : "") : m.index.toFixed(3) }),
        h("td", null, measured ? [chip(m.rating, info.colors)] : [])]);
      if (withWeights) row.appendChild(h("td", { text: String(state.spec.tasks[info.rec.task].metrics[k].weight) }));
      row.appendChild(h("td", { text: m.method ? m.method.replace("_", " ") : "" }));
      if (withBounds) row.appendChild(h("td", { text: boundsText(m), class: "bounds" }));
      t.appendChild(row);
    });
    return t;
  }

  function showTooltip(tip, info, evt) {
    clear(tip);
    const rec = info.rec;
    tip.appendChild(h("div", { class: "tt-title" }, [chip(info.compound, info.colors), " " + rec.model +
      (rec.is_reference ? " (reference)" : "")]));
    tip.appendChild(h("div", { class: "tt-sub", text: rec.environment }));
    tip.appendChild(h("div", { class: "tt-sub", text: `${rec.task} · ${rec.dataset}` +
      (rec.n > 1 ? ` · mean of ${rec.n} runs` : "") + (rec.estimated ? " · energy is an estimate" : "") +
      (rec.partial ? " · energy is partial" : "") + (rec.shared ? " · shared GPU (MIG)" : "") }));
    tip.appendChild(metricTable(info, false));
    tip.hidden = false;
    const x = evt.clientX + 14, y = evt.clientY + 14;
    tip.style.left = Math.min(x, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = (y + tip.offsetHeight > window.innerHeight ? Math.max(4, evt.clientY - tip.offsetHeight - 10) : y) + "px";
  }

  function hideTooltip(tip) { tip.hidden = true; }

  function shapeLegend(box, envs, shapeOf) {
    clear(box);
    for (const e of envs) box.appendChild(h("span", { class: "legend-item" }, [C.shapeIcon(shapeOf[e]), e]));
  }

  function sortValue(rec, row, key) {
    if (key === "compound") return row.compound;
    if (key === "model" || key === "environment" || key === "dataset") return rec[key].toLowerCase();
    if (key === "estimated") return rec.estimated ? 1 : 0;
    const v = rec.values[key];
    return v === null || v === undefined ? null : v;
  }

  const TABLE_CHUNK = 150;
  let tableShown = 0, tableObserver = null;

  /* The sortable table of visible records; returns the number of rows. */
  function table(box, idxs, ctx) {
    const { data, state, metrics, colors } = ctx;
    const rows = state.rated.rows;
    const key = state.sort.key, dir = state.sort.dir;
    const sorted = idxs.slice().sort((a, b) => {
      const va = sortValue(data.records[a], rows[a], key), vb = sortValue(data.records[b], rows[b], key);
      if (va === null && vb === null) return a - b;
      if (va === null) return 1;
      if (vb === null) return -1;
      return (va < vb ? -dir : va > vb ? dir : 0) || a - b;
    });
    clear(box);
    const cols = [["model", "Model"], ["environment", "Environment"], ["dataset", "Dataset"], ["compound", "Rating"]]
      .concat(metrics.map((m) => [m.key, m.label + (m.unit ? ` [${m.unit}]` : "")]))
      .concat([["estimated", "Estimated"], ["label", "Label"]]);
    const head = h("tr");
    for (const [k, label] of cols) {
      const th = h("th", { text: label + (k === key ? (dir > 0 ? " ▲" : " ▼") : ""), "data-key": k });
      if (k !== "label") {
        th.classList.add("sortable");
        th.addEventListener("click", () => ctx.onSort(k));
      }
      head.appendChild(th);
    }
    const thead = h("thead", null, [head]), tbody = h("tbody");
    const makeRow = (i) => {
      const rec = data.records[i], row = rows[i];
      const tr = h("tr", { "data-id": rec.id, class: state.selected === i ? "selected" : "" });
      tr.appendChild(h("td", { text: rec.model + (rec.is_reference ? " ★" : "") }));
      tr.appendChild(h("td", { text: rec.environment }));
      tr.appendChild(h("td", { text: rec.dataset }));
      tr.appendChild(h("td", null, [chip(R.LETTERS[row.compound], colors)]));
      for (const m of metrics) {
        const letter = R.LETTERS[row.rating[m.key]];
        tr.appendChild(h("td", { class: "num" }, [chip(letter, colors), " " +
          valueText(rec.values[m.key], "", rec.methods[m.key])]));
      }
      tr.appendChild(h("td", { text: rec.estimated ? "estimate" : "" }));
      const lab = h("td");
      if (rec.label && rec.label.pdf) lab.appendChild(h("a", { href: rec.label.pdf, text: "PDF" }));
      tr.appendChild(lab);
      tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") ctx.onSelect(i); });
      return tr;
    };
    // Rows are added in chunks as the table scrolls: laying out thousands of rows at once would hold up the
    // first paint for seconds, and nobody reads row 900 before scrolling there.
    const scrollTop = box.scrollTop;
    const more = h("p", { class: "muted more-rows" });
    let shown = 0;
    const grow = (upTo) => {
      const frag = document.createDocumentFragment();
      for (; shown < Math.min(upTo, sorted.length); shown++) frag.appendChild(makeRow(sorted[shown]));
      tbody.appendChild(frag);
      more.textContent = shown < sorted.length ? `${shown} of ${sorted.length} rows; scroll for more` : "";
    };
    grow(Math.max(TABLE_CHUNK, tableShown));
    box.appendChild(h("table", { class: "records" }, [thead, tbody]));
    box.appendChild(more);
    if (tableObserver) tableObserver.disconnect();
    if (shown < sorted.length && global.IntersectionObserver) {
      tableObserver = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        grow(shown + TABLE_CHUNK);
        tableShown = shown;
        if (shown >= sorted.length) {
          tableObserver.disconnect();
        } else {
          // An observer only reports changes: if the marker is still in view after growing, observing it
          // afresh reports it again, so the table keeps growing instead of stalling until the next scroll.
          tableObserver.unobserve(more);
          tableObserver.observe(more);
        }
      }, { root: box, rootMargin: "400px" });
      tableObserver.observe(more);
    } else if (shown < sorted.length) {
      grow(sorted.length);
    }
    box.scrollTop = scrollTop;
    return sorted.length;
  }

  const GALLERY_FIRST = 24;
  let galleryAll = false;

  /* Label images of visible records that have one; returns how many are shown. */
  function gallery(box, idxs, data, onSelect) {
    clear(box);
    const withLabel = idxs.filter((i) => data.records[i].label);
    const section = document.getElementById("labels-section");
    section.hidden = withLabel.length === 0;
    const shown = galleryAll ? withLabel : withLabel.slice(0, GALLERY_FIRST);
    for (const i of shown) {
      const rec = data.records[i], lab = rec.label;
      const fig = h("figure", { class: "label" });
      if (lab.img) {
        const img = h("img", { src: lab.img, alt: `Energy label of ${rec.model} on ${rec.environment}` });
        img.addEventListener("click", () => onSelect(i));
        fig.appendChild(img);
      }
      const cap = h("figcaption", { text: `${rec.model} · ${rec.environment} ` });
      if (lab.pdf) cap.appendChild(h("a", { href: lab.pdf, text: "PDF" }));
      fig.appendChild(cap);
      box.appendChild(fig);
    }
    if (shown.length < withLabel.length) {
      const more = h("button", { type: "button", text: `Show all ${withLabel.length} labels` });
      more.addEventListener("click", () => { galleryAll = true; gallery(box, idxs, data, onSelect); });
      box.appendChild(more);
    }
    return shown.length;
  }

  /* Issue 19: a transformers run's per-token figures and its prefill and decode phases (unrated). */
  function tokenFigures(box, hf) {
    const head = "Per query and per token" + (hf.task ? ` (${hf.task}${hf.dtype ? ", " + hf.dtype : ""})` : "");
    box.appendChild(h("h4", { text: head }));
    const figures = h("table", { class: "metrics tokens" });
    for (const f of hf.figures) {
      figures.appendChild(h("tr", null, [h("td", { text: f.label }),
        h("td", { class: "num", text: valueText(f.value, f.unit, f.method) }),
        h("td", { class: "muted", text: f.method || "" })]));
    }
    box.appendChild(figures);
    if (!hf.phases.length) return;
    box.appendChild(h("h4", { text: "Phases (per repeat)" }));
    const phases = h("table", { class: "metrics phases" });
    phases.appendChild(h("tr", null, ["Phase", "Energy", "Time", "Tokens", "Energy/token", "Tokens/s"].map(
      (c) => h("th", { text: c }))));
    const num = (v, unit) => (v === null || v === undefined ? "n/a" : C.fmt(v) + (unit ? " " + unit : ""));
    for (const p of hf.phases) {
      phases.appendChild(h("tr", { "data-phase": p.name }, [h("td", { text: p.name }),
        h("td", { class: "num", text: valueText(p.energy_j, "J", p.method) }),
        h("td", { class: "num", text: num(p.duration_s, "s") }), h("td", { class: "num", text: num(p.tokens, "") }),
        h("td", { class: "num", text: num(p.energy_per_token_j, "J") }),
        h("td", { class: "num", text: num(p.tokens_per_s, "") })]));
    }
    box.appendChild(phases);
  }

  function detail(box, info, data) {
    clear(box);
    const section = document.getElementById("detail-section");
    section.hidden = !info;
    if (!info) return;
    const rec = info.rec;
    box.appendChild(h("h3", null, [chip(info.compound, info.colors), " " + rec.model]));
    const facts = [["Environment", rec.environment], ["Task", rec.task], ["Dataset", rec.dataset],
      ["Backend", rec.backend], ["Device", rec.device], ["Measured", rec.start_utc], ["Runs", rec.n > 1 ? String(rec.n) : ""],
      ["Origin", rec.origin], ["Experiment", rec.id]];
    const dl = h("dl", { class: "facts" });
    for (const [k, v] of facts) {
      if (!v) continue;
      dl.appendChild(h("dt", { text: k }));
      dl.appendChild(h("dd", { text: v }));
    }
    box.appendChild(dl);
    if (rec.estimated) box.appendChild(h("p", { class: "warn", text: "Energy of this record is an estimate, not a measurement." }));
    if (rec.partial) box.appendChild(h("p", { class: "warn", text: "Energy of this record is partial: valid readings cover only part of the run." }));
    if (rec.shared) box.appendChild(h("p", { class: "warn", text: "Energy of this record is shared: the whole GPU of a MIG instance was measured, other instances included." }));
    box.appendChild(metricTable(info, false, null, true));
    if (info.metrics.some((m) => m.value === null || m.value === undefined)) {
      box.appendChild(h("p", { class: "muted", text: "Not measured: counted as E in the compound rating, so a " +
        "rating never claims what nobody measured." }));
    }
    if (rec.transformers) tokenFigures(box, rec.transformers);
    if (rec.label) {
      const fig = h("figure", { class: "label big" });
      if (rec.label.img) fig.appendChild(h("img", { src: rec.label.img, alt: `Energy label of ${rec.model}` }));
      if (rec.label.pdf) fig.appendChild(h("figcaption", null, [h("a", { href: rec.label.pdf, text: "Label as PDF" })]));
      box.appendChild(fig);
    }
    if (rec.traces && rec.traces.length) {
      box.appendChild(h("h4", { text: "Power over time per source" }));
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.id = "power";
      svg.setAttribute("class", "chart");
      box.appendChild(svg);
      const legend = h("div", { class: "legend" });
      box.appendChild(legend);
      C.lines(svg, rec.traces.map((t) => ({ name: t.name + (t.method ? ` (${t.method})` : ""), t: t.t_s, y: t.power_w })),
        "time since start [s]", "power [W]", legend);
    } else {
      box.appendChild(h("p", { class: "muted", text: data.has_traces ? "No power trace was recorded for this record." :
        "The database holds no power traces (merge with --include-traces to see power over time)." }));
    }
  }

  function numberInput(value, attrs, onInput) {
    const inp = h("input", Object.assign({ type: "number", step: "any", value: String(value) }, attrs));
    inp.addEventListener("input", () => onInput(inp));
    return inp;
  }

  /* Weight and boundary editor for the current task; edits re-rate live when they are valid. */
  function buildEditor(box, state, onEdit) {
    clear(box);
    if (!state.task) return;
    const task = state.spec.tasks[state.task];
    const t = h("table", { class: "editor" });
    t.appendChild(h("tr", null, ["Metric", "Better", "Weight", "A/B", "B/C", "C/D", "D/E"].map((c) => h("th", { text: c }))));
    const msg = h("p", { class: "warn", id: "editor-msg" });
    const apply = (m, row) => {
      const w = Number(row.weight.value);
      const b = row.bounds.map((inp) => Number(inp.value));
      let problem = "";
      const others = task.metrics.reduce((a, x) => a + (x === m ? 0 : x.weight), 0);
      if (row.weight.value === "" || !isFinite(w) || w < 0) problem = `weight of ${m.label} must be a number >= 0`;
      else if (!(others + w > 0)) problem = "weights: at least one must be above 0";
      else if (b.some((v, k) => !isFinite(v) || row.bounds[k].value === "")) problem = `boundaries of ${m.label} must be numbers`;
      else if (b.some((v, k) => k > 0 && !(b[k - 1] > v))) problem = `boundaries of ${m.label} must be strictly descending`;
      row.weight.classList.toggle("invalid", problem.startsWith("weight"));
      row.bounds.forEach((inp) => inp.classList.toggle("invalid", problem.startsWith("boundaries")));
      if (problem) { state.invalid[m.key] = problem; } else { delete state.invalid[m.key]; m.weight = w; m.boundaries = b; }
      const msgs = Object.values(state.invalid);
      msg.textContent = msgs.length ? "Not applied: " + msgs.join("; ") : "";
      if (!problem) onEdit();
    };
    for (const m of task.metrics) {
      const row = {};
      row.weight = numberInput(m.weight, { min: "0", step: "0.05", "data-metric": m.key, "data-field": "weight",
        "aria-label": `weight of ${m.label}` }, () => apply(m, row));
      row.bounds = m.boundaries.map((b, k) => numberInput(b, { "data-metric": m.key, "data-field": `b${k}`,
        "aria-label": `boundary ${k + 1} of ${m.label}` }, () => apply(m, row)));
      t.appendChild(h("tr", null, [h("td", { text: m.label + (m.unit ? ` [${m.unit}]` : "") }),
        h("td", { text: m.higher_is_better ? "higher" : "lower" }), h("td", null, [row.weight])]
        .concat(row.bounds.map((inp) => h("td", null, [inp])))));
    }
    const mode = document.getElementById("compound-mode");
    clear(mode);
    for (const key of Object.keys(R.MODES)) option(mode, key, R.MODES[key]);
    mode.value = state.spec.compound;
    mode.onchange = () => { state.spec.compound = mode.value; onEdit(); };
    box.appendChild(t);
    box.appendChild(msg);
  }

  function specStatus(box, state, original, mismatches) {
    const same = JSON.stringify(state.spec) === JSON.stringify(original);
    box.className = same ? "status ok" : "status changed";
    box.textContent = same
      ? `Ratings follow spec ${original.name} (sha256 ${original.sha256.slice(0, 12)}…), as \`mlee rate\` computes them.`
      : `Adjusted in this page: these ratings no longer follow spec ${original.name}. Download the adjusted spec ` +
        "to rate with it (`mlee rate --spec FILE`), or reset.";
    if (same && mismatches.length) {
      box.className = "status changed";
      box.textContent += ` Warning: ${mismatches.length} record(s) rate differently here than in mlee; please report this.`;
    }
  }

  /* Save the spec as edited in the page, in the spec file format `mlee rate --spec FILE` reads. */
  function downloadSpec(state, data) {
    const file = R.adjustedSpecFile(data.spec_file, state.spec, data.spec);
    const blob = new Blob([JSON.stringify(file, null, 2) + "\n"], { type: "application/json" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `${file.name}.json` });
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  global.MleeViews = { clear, option, header, showTooltip, hideTooltip, shapeLegend, table, gallery, detail,
    buildEditor, specStatus, downloadSpec };
})(window);
