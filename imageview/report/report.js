"use strict";
(function () {
  var data = JSON.parse(document.getElementById("data").textContent);
  var palette = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
    "#fccde5", "#bc80bd", "#ccebc5", "#ffed6f", "#a6cee3", "#b2df8a", "#fb9a99", "#cab2d6"];
  function colour(layer) { return palette[layer % palette.length]; }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(n) {
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return Number(n.toPrecision(3)) + units[i];
  }

  document.getElementById("title").textContent = data.title + " (" + data.image.slice(7, 19) + ")";
  var summary = document.getElementById("summary");
  [["Total size", data.size, "total-size"], ["Efficiency", data.efficiency, "efficiency"],
   ["Wasted", data.wasted, "wasted-bytes"], ["User wasted", data.userWasted, "user-wasted"]].forEach(function (s) {
    var span = el("span", { id: s[2] });
    span.appendChild(el("b", {}, s[0] + ": "));
    span.appendChild(document.createTextNode(s[1]));
    summary.appendChild(span);
  });

  var tbody = document.querySelector("#layers tbody");
  data.layers.forEach(function (l) {
    var tr = el("tr", { "data-layer": l.index, class: l.empty ? "empty" : "" });
    var sw = el("td");
    if (!l.empty) { var s = el("span", { class: "swatch" }); s.style.background = colour(l.index); sw.appendChild(s); }
    tr.appendChild(sw);
    tr.appendChild(el("td", { class: "num" }, l.index));
    tr.appendChild(el("td", { class: "num size" }, l.size));
    tr.appendChild(el("td", { class: "num" }, l.Added));
    tr.appendChild(el("td", { class: "num" }, l.Changed));
    tr.appendChild(el("td", { class: "num" }, l.Removed));
    tr.appendChild(el("td", { class: "num wasted" }, l.wasted));
    tr.appendChild(el("td", { class: "cmd" }, l.createdBy));
    tbody.appendChild(tr);
  });

  var wbody = document.querySelector("#wasted tbody");
  if (!data.wastedFiles || data.wastedFiles.length === 0) {
    var tr = el("tr"); tr.appendChild(el("td", { colspan: 3 }, "No wasted files.")); wbody.appendChild(tr);
  }
  (data.wastedFiles || []).forEach(function (w) {
    var tr = el("tr", { class: "wasted-file" });
    tr.appendChild(el("td", { class: "num" }, w.bytes));
    tr.appendChild(el("td", {}, w.layers.join(",")));
    tr.appendChild(el("td", { class: "path" }, w.path));
    wbody.appendChild(tr);
  });

  // The icicle chart: one row per directory level, widths by size.
  var box = document.getElementById("icicle"), crumbs = document.getElementById("crumbs"),
    hover = document.getElementById("hover");
  var rowHeight = 22, maxDepth = 8;
  var parents = new Map();
  (function link(n) { (n.children || []).forEach(function (c) { parents.set(c, n); link(c); }); })(data.tree);

  function draw(root) {
    box.textContent = "";
    var width = box.clientWidth || 800, depth = 0;
    function place(n, x, w, level) {
      if (w < 1 || level >= maxDepth) return;
      depth = Math.max(depth, level + 1);
      var d = el("div", { "data-path": n.path, title: n.path + " " + fmt(n.size) }, n.name + " " + fmt(n.size));
      d.style.left = x + "px"; d.style.top = level * rowHeight + "px";
      d.style.width = w + "px"; d.style.height = rowHeight + "px";
      if (n.layer !== undefined) d.style.background = colour(n.layer); else d.className = "dir";
      d.onclick = function () { draw(level === 0 && parents.has(n) ? parents.get(n) : n); };
      d.onmouseenter = function () {
        hover.textContent = n.path + "  " + fmt(n.size) + (n.layer !== undefined ? "  layer " + n.layer : "");
      };
      box.appendChild(d);
      var cx = x;
      (n.children || []).forEach(function (c) {
        var cw = n.size > 0 ? w * c.size / n.size : 0;
        place(c, cx, cw, level + 1);
        cx += cw;
      });
    }
    place(root, 0, width, 0);
    box.style.height = Math.max(depth, 1) * rowHeight + "px";
    crumbs.textContent = "";
    var chain = [];
    for (var n = root; n; n = parents.get(n)) chain.unshift(n);
    chain.forEach(function (c, i) {
      var a = el("a", {}, i === 0 ? "/" : c.name + "/");
      a.onclick = function () { draw(c); };
      crumbs.appendChild(a);
    });
  }
  draw(data.tree);
  window.addEventListener("resize", function () { draw(data.tree); });
  document.body.setAttribute("data-rendered", "yes");
})();
