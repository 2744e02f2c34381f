/* mlee report: the rating method of mlee.rating, ported to JavaScript so the page re-rates live.
 * Same arithmetic in the same order as the Python code (both are IEEE doubles), so for the same spec the
 * page's ratings equal `mlee rate`'s; tests/test_report_browser.py checks this on the 2022 logs. */
"use strict";
(function (global) {
  const LETTERS = ["A", "B", "C", "D", "E"];

  const TIE_TOLERANCE = 1e-9;

  function finite(v) { return typeof v === "number" && isFinite(v); }

  /* Python's math.fsum (Shewchuk's exact partials, correctly rounded), so sums equal to the last bit. */
  function fsum(values) {
    const partials = [];
    for (let x of values) {
      let i = 0;
      for (let j = 0; j < partials.length; j++) {
        let y = partials[j];
        if (Math.abs(x) < Math.abs(y)) { const t = x; x = y; y = t; }
        const hi = x + y, lo = y - (hi - x);
        if (lo !== 0) partials[i++] = lo;
        x = hi;
      }
      partials.length = i;
      partials.push(x);
    }
    let n = partials.length, hi = 0, lo = 0;
    if (n > 0) {
      hi = partials[--n];
      while (n > 0) {
        const x = hi, y = partials[--n];
        hi = x + y;
        lo = y - (hi - x);
        if (lo !== 0) break;
      }
      if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
        const y = lo * 2, x = hi + y;
        if (y === x - hi) hi = x;
      }
    }
    return hi;
  }

  /* Index of a value against the reference value (mlee.rating.core.index_of): >1 is better than the reference;
   * null for a missing or negative value, a division by zero, or a non-finite result. */
  function indexOf(value, ref, higherIsBetter, zero) {
    if (!finite(value) || !finite(ref) || value < 0 || ref < 0) return null;
    const num = higherIsBetter ? value : ref, den = higherIsBetter ? ref : value;
    if (den === 0) return finite(zero) ? zero : null;  /* the spec's zero_division_index (mlee-2022: 0) */
    const index = num / den;
    return finite(index) ? index : null;
  }

  /* The index boundaries as figures in the metric's unit for a group whose base value is `base`
   * (mlee.rating.core.value_boundaries): b * base, or base / b for lower-is-better (null for b = 0). */
  function valueBoundaries(base, boundaries, higherIsBetter) {
    if (base && typeof base === "object") {  /* index_base "range": the edges of the five bands */
      const span = base.hi - base.lo;
      return boundaries.map((b) => (higherIsBetter ? base.lo + b * span : base.hi - b * span));
    }
    if (!finite(base) || base < 0) return null;
    return boundaries.map((b) => (higherIsBetter ? b * base : (b > 0 ? base / b : null)));
  }

  /* Rating number 0 (A) .. 4 (E): A if index > b1, B if b1 >= index > b2, ..., E otherwise or when missing. */
  function rateIndex(index, boundaries) {
    if (index === null || index === undefined) return 4;
    for (let i = 0; i < boundaries.length; i++) {
      if (index > boundaries[i]) return i;
    }
    return Math.min(boundaries.length, 4);
  }

  function isHalf(cumulative, total) { return Math.abs(cumulative - total / 2) <= TIE_TOLERANCE * total; }

  function paperMedian(pairs, total, optimistic) {
    const ordered = pairs.map((p, i) => [p[0], p[1], i]).sort((a, b) => a[0] - b[0] || a[2] - b[2]);
    let cumulative = 0, previous = 0;
    for (let k = 0; k < ordered.length; k++) {
      previous = cumulative;
      cumulative += ordered[k][1];
      if (cumulative > total / 2 && !isHalf(cumulative, total)) {
        if (k === 0) return ordered[0][0];
        const before = ordered[k - 1][0];
        if (isHalf(previous, total)) {
          const mean = (before + ordered[k][0]) / 2;
          return optimistic ? Math.floor(mean) : Math.ceil(mean);
        }
        return before;
      }
    }
    return ordered[ordered.length - 1][0];
  }

  function weightedMedian(pairs, total, optimistic) {
    const byRating = new Map();
    for (const [r, w] of pairs) byRating.set(r, (byRating.get(r) || 0) + w);
    const levels = [...byRating.keys()].sort((a, b) => a - b);
    let cumulative = 0;
    for (let k = 0; k < levels.length; k++) {
      cumulative += byRating.get(levels[k]);
      if (isHalf(cumulative, total) && k + 1 < levels.length) {
        const mean = (levels[k] + levels[k + 1]) / 2;
        return optimistic ? Math.floor(mean) : Math.ceil(mean);
      }
      if (cumulative > total / 2) return levels[k];
    }
    return levels[levels.length - 1];
  }

  function weightedMean(pairs, total, optimistic) {
    const mean = fsum(pairs.map(([r, w]) => r * w)) / total;
    const nearest = Math.round(mean);
    if (Math.abs(mean - nearest) <= TIE_TOLERANCE) return nearest;
    return optimistic ? Math.floor(mean) : Math.ceil(mean);
  }

  /* Compound modes of mlee.rating.core.COMPOUND_MODES, with the labels the page shows. */
  const MODES = {
    "paper-median": "median as in the 2022 paper (optimistic)",
    "paper-median-pessimistic": "median as in the 2022 code, pessimistic",
    "majority": "majority (most frequent rating, unweighted)",
    "median-optimistic": "weighted median, optimistic",
    "median-pessimistic": "weighted median, pessimistic",
    "mean-optimistic": "weighted mean, optimistic",
    "mean-pessimistic": "weighted mean, pessimistic",
    "best": "best metric",
    "worst": "worst metric",
  };

  /* Compound rating number of per-metric rating numbers (mlee.rating.core.compound); metrics of weight 0 do
   * not count. Throws on an unknown mode or when no weight is positive. */
  function compound(ratings, weights, mode) {
    if (!(mode in MODES)) throw new Error("unknown compound mode " + mode);
    const pairs = [];
    for (let i = 0; i < ratings.length; i++) if (weights[i] > 0) pairs.push([ratings[i], weights[i]]);
    if (!pairs.length) throw new Error("no metric has a positive weight");
    if (mode === "best") return Math.min(...pairs.map((p) => p[0]));
    if (mode === "worst") return Math.max(...pairs.map((p) => p[0]));
    if (mode === "majority") {
      const counts = [0, 0, 0, 0, 0];
      for (const [r] of pairs) counts[r] += 1;
      return counts.indexOf(Math.max(...counts));  /* the first: ties go to the better rating */
    }
    const total = fsum(pairs.map((p) => p[1]));
    if (mode.startsWith("mean-")) return weightedMean(pairs, total, mode === "mean-optimistic");
    if (mode.startsWith("paper-median")) return paperMedian(pairs, total, mode === "paper-median");
    return weightedMedian(pairs, total, mode === "median-optimistic");
  }

  /* The (task, dataset, environment) group of a record, exactly as mlee.rating forms it. */
  function groupKey(rec) { return JSON.stringify(rec.group); }

  function byBackend(a, b) {
    const x = a.backend_name || "", y = b.backend_name || "";
    return x < y ? -1 : x > y ? 1 : 0;
  }

  /* index_base "range" (mlee.rating.groups.range_column): per metric the group's smallest and largest figure. */
  function rangeBases(task, members) {
    const out = {};
    for (const m of task.metrics) {
      const vals = members.map((r) => r.values[m.key]).filter((v) => finite(v) && v >= 0);
      out[m.key] = vals.length ? { lo: Math.min(...vals), hi: Math.max(...vals) } : null;
    }
    return out;
  }

  /* Where a figure lies between the group's worst (0) and best (1) figure; 1 for a group without spread. */
  function rangeIndex(value, base, higherIsBetter) {
    if (!finite(value) || value < 0 || !base) return null;
    const span = base.hi - base.lo;
    if (span === 0 || !isFinite(span)) return 1;
    return higherIsBetter ? (value - base.lo) / span : (base.hi - value) / span;
  }

  /* Stars of a rating number (the ai-energy-score preset's display): 5 for A ... 1 for E. */
  function starText(number) { return "\u2605".repeat(5 - number) + "\u2606".repeat(number); }

  /* Per metric, the value indices are taken against (mlee.rating.rate._bases): the reference model's
   * (the first by backend name where a group holds it twice), or the group's best value. */
  function bases(task, indexBase, members) {
    if (indexBase === "range") return rangeBases(task, members);
    if (indexBase === "reference") {
      const refs = members.filter((r) => r.model === task.reference).sort(byBackend);
      return refs.length ? refs[0].values : null;
    }
    const out = {};
    for (const m of task.metrics) {
      const vals = members.map((r) => r.values[m.key]).filter((v) => finite(v) && v >= 0);
      if (m.higher_is_better) out[m.key] = vals.length ? Math.max(...vals) : null;
      else {
        const pos = vals.filter((v) => v > 0);
        out[m.key] = pos.length ? Math.min(...pos) : null;
      }
    }
    return out;
  }

  /* Rate every record within its group (mlee.rating.rate_database on the page's data).
   * Returns {rows: [{index: {k}, rating: {k}, compound}], refs: {groupKey: {metric: base value}}}. */
  function rateRecords(records, spec) {
    const members = new Map();
    for (const rec of records) {
      if (!spec.tasks[rec.task]) continue;
      const key = groupKey(rec);
      if (!members.has(key)) members.set(key, []);
      members.get(key).push(rec);
    }
    const refs = {};
    for (const [key, recs] of members) refs[key] = bases(spec.tasks[recs[0].task], spec.index_base, recs);
    const rows = records.map((rec) => {
      const task = spec.tasks[rec.task];
      const out = { index: {}, rating: {}, compound: 4 };
      if (!task) return out;
      const base = refs[groupKey(rec)] || {};
      const ratings = [], weights = [];
      for (const m of task.metrics) {
        const idx = spec.index_base === "range" ? rangeIndex(rec.values[m.key], base[m.key], m.higher_is_better)
          : indexOf(rec.values[m.key], base[m.key], m.higher_is_better, spec.zero_division_index);
        const r = rateIndex(idx, m.boundaries);
        out.index[m.key] = idx;
        out.rating[m.key] = r;
        ratings.push(r);
        weights.push(m.weight);
      }
      out.compound = compound(ratings, weights, spec.compound);
      return out;
    });
    return { rows: rows, refs: refs };
  }

  /* The spec file (mlee.rating.Spec.to_dict form) with the weights, boundaries and compound mode edited in the
   * page (what differs from `original`, the page spec as shipped), so `mlee rate --spec FILE` rates as the page. */
  function adjustedSpecFile(file, spec, original) {
    const out = JSON.parse(JSON.stringify(file));
    let changed = spec.compound !== original.compound;
    out.compound = spec.compound;
    for (const [name, task] of Object.entries(spec.tasks)) {
      const target = out.tasks[name], before = original.tasks[name];
      if (!target || !before) continue;
      for (const m of task.metrics) {
        const fm = target.metrics.find((x) => x.key === m.key), om = before.metrics.find((x) => x.key === m.key);
        if (!fm || !om) continue;
        if (m.weight !== om.weight) { fm.weight = m.weight; changed = true; }
        if (JSON.stringify(m.boundaries) !== JSON.stringify(om.boundaries)) {
          fm.boundaries = m.boundaries.slice();
          fm.quantiles = null;
          changed = true;
        }
      }
    }
    if (changed) {
      out.name = file.name + "-adjusted";
      out.description = ((file.description || "") + " Weights, boundaries or compound mode adjusted in an mlee report.").trim();
    }
    return out;
  }

  global.MleeRating = { LETTERS, MODES, fsum, indexOf, rangeIndex, starText, valueBoundaries, rateIndex, compound,
    rateRecords, groupKey,
    adjustedSpecFile };
})(window);
