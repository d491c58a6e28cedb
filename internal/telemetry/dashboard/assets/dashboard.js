// The dashboard: one EventSource, a rolling window per chart, drawn by hand
// on canvases (no dependencies, works offline).
"use strict";
(function () {
  const WINDOW = 120; // samples kept per series
  const COLORS = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a"];
  const charts = Array.from(document.querySelectorAll("figure.chart")).map(function (el) {
    const keys = el.dataset.series.split(",");
    const labels = el.dataset.labels.split(",");
    const c = { el: el, canvas: el.querySelector("canvas"), keys: keys, labels: labels,
      scale: Number(el.dataset.scale || 1), fixedMax: el.dataset.max ? Number(el.dataset.max) : null, data: {} };
    keys.forEach(function (k) { c.data[k] = []; });
    const legend = el.querySelector(".legend");
    keys.forEach(function (k, i) {
      const span = document.createElement("span");
      span.innerHTML = '<i style="background:' + COLORS[i] + '"></i>' + labels[i] + ': <b data-key="' + k + '">–</b>';
      legend.appendChild(span);
    });
    return c;
  });

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (Math.abs(v) >= 100) return v.toFixed(0);
    if (Math.abs(v) >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }

  function draw(c) {
    const cv = c.canvas, dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth, h = cv.clientHeight;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
    }
    const g = cv.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    let top = c.fixedMax || 0;
    if (!c.fixedMax) {
      c.keys.forEach(function (k) { c.data[k].forEach(function (v) { if (v !== null && v > top) top = v; }); });
      top = top > 0 ? top * 1.15 : 1;
    }
    const padL = 44, padB = 4, plotW = w - padL - 4, plotH = h - padB - 8;
    g.strokeStyle = "#dde1e8"; g.fillStyle = "#6b7385"; g.font = "10px system-ui"; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = 8 + plotH * i / 4;
      g.beginPath(); g.moveTo(padL, y); g.lineTo(w - 4, y); g.stroke();
      g.fillText(fmt(top * (1 - i / 4)), 2, y + 3);
    }
    let segments = 0;
    c.keys.forEach(function (k, i) {
      const pts = c.data[k];
      g.strokeStyle = COLORS[i]; g.lineWidth = 1.6; g.beginPath();
      let pen = false;
      pts.forEach(function (v, j) {
        if (v === null) { pen = false; return; }
        const x = padL + plotW * (j + WINDOW - pts.length) / (WINDOW - 1);
        const y = 8 + plotH * (1 - Math.min(v / top, 1));
        if (pen) { g.lineTo(x, y); segments++; } else { g.moveTo(x, y); pen = true; }
      });
      g.stroke();
      const last = pts.length ? pts[pts.length - 1] : null;
      const b = c.el.querySelector('b[data-key="' + k + '"]');
      if (b) b.textContent = fmt(last);
    });
    c.el.dataset.segments = String(segments);
    c.el.dataset.points = String(c.data[c.keys[0]].filter(function (v) { return v !== null; }).length);
    c.el.dataset.last = JSON.stringify(c.keys.map(function (k) { const p = c.data[k]; return p.length ? p[p.length - 1] : null; }));
  }

  function renderAlerts(alerts) {
    const ul = document.getElementById("alerts");
    ul.textContent = "";
    const shown = (alerts || []).filter(function (a) { return a.state !== "resolved"; });
    if (shown.length === 0) {
      const li = document.createElement("li"); li.className = "none"; li.textContent = "no alerts"; ul.appendChild(li); return;
    }
    shown.forEach(function (a) {
      const li = document.createElement("li");
      li.className = "alert state-" + a.state;
      li.dataset.name = a.name; li.dataset.state = a.state;
      li.textContent = a.state.toUpperCase() + " · " + a.name + " (" + a.severity + ") value " + fmt(a.value) +
        " since " + new Date(a.since).toLocaleTimeString();
      ul.appendChild(li);
    });
  }

  function flatten(prefix, v, out) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      Object.keys(v).forEach(function (k) { flatten(prefix ? prefix + "." + k : k, v[k], out); });
    } else {
      out.push([prefix, Array.isArray(v) ? (v.length ? v.join(", ") : "none") : String(v)]);
    }
  }

  function renderSettings(s) {
    const dl = document.getElementById("settings");
    dl.textContent = "";
    if (!s) return;
    const rows = [];
    flatten("", s, rows);
    rows.forEach(function (r) {
      const dt = document.createElement("dt"); dt.textContent = r[0];
      const dd = document.createElement("dd"); dd.textContent = r[1]; dd.dataset.key = r[0];
      dl.appendChild(dt); dl.appendChild(dd);
    });
  }

  let samples = 0;
  const status = document.getElementById("status");
  const es = new EventSource("/dashboard/events");
  es.addEventListener("sample", function (e) {
    const s = JSON.parse(e.data);
    charts.forEach(function (c) {
      c.keys.forEach(function (k) {
        const v = s[k];
        c.data[k].push(v === null || v === undefined ? null : v * c.scale);
        if (c.data[k].length > WINDOW) c.data[k].shift();
      });
      draw(c);
    });
    renderAlerts(s.alerts);
    renderSettings(s.settings);
    samples++;
    document.body.dataset.samples = String(samples);
    status.textContent = "live · " + new Date(s.at).toLocaleTimeString();
  });
  es.onerror = function () { status.textContent = "reconnecting…"; };
  window.addEventListener("resize", function () { charts.forEach(draw); });
})();
