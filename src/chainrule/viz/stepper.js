// chainrule's stepper: walks the forward pass and then the backward pass one gate at a time.
// All it reads is the JSON in #cr-data (written by chainrule/viz/html.py) and the SVG views in
// it; it needs no network and no library.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("cr-data").textContent);
  var GREEN = "#1a7f37", RED = "#cf222e";
  var steps = data.steps, n = steps.length;
  var k = 0, view = data.view, timer = null, selected = null;
  var graph = document.getElementById("graph"), panel = document.getElementById("panel");
  var info = document.getElementById("info"), indicator = document.getElementById("indicator");
  var prevButton = document.getElementById("prev"), nextButton = document.getElementById("next");
  var playButton = document.getElementById("play"), viewsBar = document.getElementById("views");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return parent;
  }

  // -- numbers: every number of a small tensor, shape + summary + heat map for a large one --
  function num(v, cls, role, input) {
    var wrap = el("span", "num " + cls);
    wrap.setAttribute("data-role", role);
    if (input !== undefined) wrap.setAttribute("data-input", input);
    if (!v) { wrap.textContent = "-"; wrap.setAttribute("data-text", "-"); return wrap; }
    wrap.setAttribute("data-text", v.text);
    if (v.grid && (v.ndim === 0 || (v.ndim === 1 && v.grid[0].length <= 8))) {
      wrap.textContent = v.text;
    } else if (v.grid) {
      var table = el("table", "grid");
      table.title = v.shape;
      v.grid.forEach(function (row) {
        var tr = el("tr");
        row.forEach(function (c) { tr.appendChild(el("td", null, c)); });
        table.appendChild(tr);
      });
      wrap.appendChild(table);
    } else if (v.heat) {
      var box = el("span", "heat");
      box.appendChild(heatmap(v.heat));
      box.appendChild(el("span", "summary", v.shape + " " + (v.summary || "")));
      wrap.appendChild(box);
    } else {
      wrap.textContent = v.text;
    }
    return wrap;
  }

  function heatmap(h) {
    var c = document.createElement("canvas");
    c.width = h.cols; c.height = h.rows;
    c.style.height = Math.max(8, Math.round(96 * h.rows / Math.max(h.cols, 1))) + "px";
    var ctx = c.getContext("2d"), img = ctx.createImageData(h.cols, h.rows);
    var scale = Math.max(Math.abs(h.lo), Math.abs(h.hi)) || 1;
    for (var i = 0; i < h.v.length; i++) {
      var t = h.v[i] / scale, r, g, b;   // blue below zero, white at zero, red above
      if (t >= 0) { r = 255; g = b = Math.round(255 * (1 - t)); }
      else { b = 255; r = g = Math.round(255 * (1 + t)); }
      img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    c.title = "min " + h.lo.toPrecision(3) + ", max " + h.hi.toPrecision(3);
    return c;
  }

  function sumOf(branches) {
    var s = el("span", "sum");
    branches.forEach(function (b, i) {
      if (i) add(s, el("span", "op", " + "));
      add(s, num(b.grad, "grad", "branch", b.from), el("span", "label", " (from " + b.from + ")"));
    });
    return s;
  }

  // -- one panel per step --------------------------------------------------------------------
  function renderPanel() {
    panel.innerHTML = "";
    panel.setAttribute("data-step", String(k));
    if (k === 0) {
      add(panel, el("div", "phase", "ready"),
          el("div", "formula", data.title),
          el("p", "note", "Next (or ArrowRight) walks the forward pass gate by gate (" +
             data.forward + " gates), then the backward pass in the order backprop visits " +
             "the gates (" + data.backward + "). Click a node for its value, gradient and " +
             "the line that built it."));
      if (data.note) add(panel, el("p", "note", data.note));
      if (data.error) add(panel, el("p", "note", data.error));
      return;
    }
    var s = steps[k - 1];
    panel.setAttribute("data-phase", s.phase);
    add(panel, el("div", "phase " + s.phase, s.phase + " pass \u00b7 gate " + s.k + " of " + s.n),
        el("div", "formula", s.formula));
    if (s.site) add(panel, el("div", "site", s.site));
    if (s.phase === "forward") {
      s.inputs.forEach(function (x) {
        add(panel, add(el("div", "eq"), el("span", "who", x.name), el("span", "op", "="),
                       num(x.value, "value", "in", x.name)));
      });
      add(panel, add(el("div", "eq"), el("span", "who", s.name), el("span", "op", "="),
                     num(s.value, "value", "out")));
      return;
    }
    add(panel, add(el("div", "eq"), el("span", "who", "upstream"),
                   el("span", "label", "d" + data.title.split(" = ")[0] + "/d" + s.name),
                   el("span", "op", "="), num(s.upstream, "grad", "upstream")));
    if (s.branches.length) {
      add(panel, add(el("div", "eq fanout"), el("span", "label", "fan-out: upstream ="),
                     sumOf(s.branches), el("span", "op", "="),
                     num(s.upstream, "grad", "fanout-total"),
                     el("span", "note", "(" + s.name + " feeds " + s.branches.length +
                        " gates, and their gradients add)")));
    }
    if (!s.elementwise || !s.wires.some(function (w) { return w.local; })) {
      add(panel, el("p", "note", "local gradient: not one number per element; downstream = " +
                    s.rule));
    }
    s.wires.forEach(function (w) {
      var row = add(el("div", "eq wire"), el("span", "who", w.name));
      row.setAttribute("data-input", w.name);
      if (w.nograd) {
        add(row, el("span", "note", "takes no gradient"));
      } else if (w.local) {
        add(row, el("span", "label", "downstream = upstream \u00d7 local ="),
            num(s.upstream, "grad", "upstream-factor", w.name), el("span", "op", "\u00d7"),
            num(w.local, "local", "local", w.name), el("span", "op", "="));
        if (w.summed) {
          add(row, num(w.product, "grad", "product", w.name),
              el("span", "note", "\u2192 summed over " + w.summed + " (" + w.name +
                 " was broadcast from " + w.from + " to " + w.to + ") ="));
        }
        add(row, num(w.down, "grad", "down", w.name));
      } else {
        add(row, el("span", "label", "downstream ="));
        if (w.summed) {
          add(row, num(w.product, "grad", "product", w.name),
              el("span", "note", "\u2192 summed over " + w.summed + " (" + w.name +
                 " was broadcast from " + w.from + " to " + w.to + ") ="));
        }
        add(row, num(w.down, "grad", "down", w.name));
      }
      panel.appendChild(row);
    });
    s.leaves.forEach(function (leaf) {
      add(panel, add(el("div", "eq leaf"), el("span", "who", leaf.name),
                     el("span", "label", "has all its gradient now: fan-out sum"),
                     sumOf(leaf.branches), el("span", "op", "="),
                     num(leaf.total, "grad", "leaf-total", leaf.name)));
    });
  }

  // -- the picture ---------------------------------------------------------------------------
  function find(id) { return graph.querySelector("[id='" + id + "']"); }

  function showView(name) {
    if (!data.views[name]) {
      graph.innerHTML = "";
      add(graph, el("p", "notice", data.error ||
                    "No picture: Graphviz was not available when this page was written."));
    } else {
      graph.innerHTML = data.views[name];
    }
    view = name;
    renderViews();
    paint();
  }

  function renderViews() {
    viewsBar.innerHTML = "";
    if (!data.modules.length) return;
    if (view !== "collapsed") {
      var c = el("button", null, "Collapse modules"); c.type = "button";
      c.onclick = function () { showView("collapsed"); };
      viewsBar.appendChild(c);
    }
    if (view !== "expanded") {
      var x = el("button", null, "Expand all"); x.type = "button";
      x.onclick = function () { showView("expanded"); };
      viewsBar.appendChild(x);
    }
  }

  function paint() {
    // numbers appear as the walk reaches them: values after their gate's forward step,
    // gradients after the backward step that sends them
    Object.keys(data.reveal).forEach(function (id) {
      var e = find(id);
      if (!e) return;
      var when = data.reveal[id];
      e.querySelectorAll("text").forEach(function (t) {
        var fill = (t.getAttribute("fill") || "").toLowerCase();
        var hide = (fill === GREEN && k < when[0]) || (fill === RED && k < when[1]);
        t.classList.toggle("cr-hidden", hide);
      });
    });
    graph.querySelectorAll(".cr-current, .cr-wire").forEach(function (e) {
      e.classList.remove("cr-current", "cr-wire");
    });
    graph.querySelectorAll(".cr-selected").forEach(function (e) {
      e.classList.remove("cr-selected");
    });
    if (selected && find(selected)) find(selected).classList.add("cr-selected");
    if (k === 0) return;
    var s = steps[k - 1];
    var node = find(s.node);
    if (!node && data.nodes[s.node] && data.nodes[s.node].box) node = find(data.nodes[s.node].box);
    if (node) {
      node.classList.add("cr-current");
      if (node.scrollIntoView && graph.scrollHeight > graph.clientHeight) {
        node.scrollIntoView({block: "nearest", inline: "nearest"});
      }
    }
    s.edges.concat(s.out).forEach(function (id) {
      var e = find(id);
      if (e) e.classList.add("cr-wire");
    });
  }

  function go(to) {
    k = Math.max(0, Math.min(n, to));
    indicator.textContent = "step " + k + " of " + n;
    prevButton.disabled = k === 0;
    nextButton.disabled = k === n;
    renderPanel();
    paint();
  }

  function play() {
    if (timer) { stop(); return; }
    if (k === n) go(0);
    playButton.textContent = "Pause";
    timer = setInterval(function () {
      if (k >= n) { stop(); return; }
      go(k + 1);
    }, 1200);
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    playButton.textContent = "Play";
  }

  // -- clicking a node -----------------------------------------------------------------------
  function showInfo(id) {
    var d = data.nodes[id];
    info.innerHTML = "";
    if (!d) return;
    selected = id;
    info.setAttribute("data-node", id);
    add(info, el("div", "phase", d.kind), el("div", "formula", d.formula || d.name));
    if (d.kind === "module") {
      add(info, el("p", "note", "module " + d.name + ": " + d.gates + " gates"));
      return;
    }
    add(info, add(el("div", "eq"), el("span", "who", "value"), num(d.value, "value", "node-value")));
    add(info, add(el("div", "eq"), el("span", "who", "gradient"),
                  num(d.grad, "grad", "node-grad")));
    add(info, add(el("div", "site"), el("span", null, d.site ? "built at " + d.site
                                                              : "built by chainrule")));
    paint();
  }

  graph.addEventListener("click", function (e) {
    var g = e.target.closest ? e.target.closest("g.node") : null;
    if (!g) return;
    var d = data.nodes[g.id];
    if (d && d.kind === "module") {
      var open = "open:" + d.module;
      showView(data.views[open] ? open : "expanded");
    }
    showInfo(g.id);
  });

  prevButton.addEventListener("click", function () { stop(); go(k - 1); });
  nextButton.addEventListener("click", function () { stop(); go(k + 1); });
  playButton.addEventListener("click", play);
  document.addEventListener("keydown", function (e) {
    if (e.key === "ArrowRight") { stop(); go(k + 1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { stop(); go(k - 1); e.preventDefault(); }
  });

  showView(view);
  go(0);
})();
