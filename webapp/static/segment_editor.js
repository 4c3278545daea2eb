/* Clarion admin: the point-and-click editor of "Only readers who…" conditions.
   Progressive enhancement: the JSON textarea (#conditions) stays the source of truth and the
   fallback without script; this editor reads it, and writes it back after every change (then
   fires "input" on it, which the live count listens to). It handles what it can show: a list
   of conditions combined with all/any, each negatable, with at most one level of groups;
   anything else is left to the JSON, and the editor says so. Also fills the live counts of the
   segments list ([data-count-src]). */
(function () {
  "use strict";

  var seq = 0;
  function uid(prefix) { seq += 1; return "se-" + prefix + "-" + seq; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "hidden" || key === "checked" || key === "selected" || key === "multiple") node[key] = !!attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  // Each condition's fields: [field, control, choices] (README "Segments and series").
  var FIELDS = {
    subscribed: [["list", "select", "lists"], ["after", "date"], ["before", "date"]],
    language: [["languages", "checks", "languages"]],
    tag: [["tags", "checks", "tags"]],
    country: [["countries", "codes"], ["petition", "optional", "petitions"]],
    signed: [["petition", "optional", "petitions"]],
    received: [["alert", "select", "alerts"]],
    clicked: [["alert", "select", "alerts"], ["link", "index"]],
    shared: [["hashtag_day", "select", "hashtag_days"]],
    inactive: [["inactive", "inactive"]],
    segment: [["segment", "select", "segments"]]
  };

  // --- the tree and the editor's model: a group {op, items: [{neg, leaf} | {neg, group}]} ---

  function opOf(node) {
    if (!node || typeof node !== "object" || Object.keys(node).length !== 1) return null;
    if (Array.isArray(node.all)) return "all";
    if (Array.isArray(node.any)) return "any";
    return null;
  }

  function toItem(node, depth) {
    var neg = false;
    if (node && typeof node === "object" && Object.keys(node).length === 1 && "not" in node) {
      neg = true;
      node = node.not;
    }
    if (!node || typeof node !== "object") return null;
    if (typeof node.type === "string" && FIELDS[node.type]) return { neg: neg, leaf: node };
    if (depth > 0 || !opOf(node)) return null;
    var group = toGroup(node, depth + 1);
    return group ? { neg: neg, group: group } : null;
  }

  function toGroup(node, depth) {
    var op = opOf(node);
    var items = node[op].map(function (item) { return toItem(item, depth); });
    return items.indexOf(null) >= 0 ? null : { op: op, items: items };
  }

  function fromText(text) {
    if (!text.trim()) return { op: "all", items: [] };
    var tree;
    try { tree = JSON.parse(text); } catch (e) { return null; }
    if (opOf(tree)) return toGroup(tree, 0);
    var item = toItem(tree, 0);
    return item ? { op: "all", items: [item] } : null;
  }

  function itemTree(item) {
    var tree = item.leaf ? item.leaf : groupTree(item.group);
    return item.neg ? { not: tree } : tree;
  }

  function groupTree(group) {
    var tree = {};
    tree[group.op] = group.items.map(itemTree);
    return tree;
  }

  function toText(root) {
    return root.items.length ? JSON.stringify(groupTree(root), null, 2) : "";
  }

  // --- the editor ---

  function Editor(box, textarea, data) {
    this.box = box;
    this.textarea = textarea;
    this.choices = data.choices;
    this.t = data.labels;
    this.root = fromText(textarea.value) || null;
    var self = this;
    textarea.addEventListener("input", function () {
      if (self.writing) return;
      self.root = fromText(textarea.value);
      self.render();
    });
    this.render();
  }

  Editor.prototype.write = function () {
    this.textarea.value = toText(this.root);
    this.writing = true;
    this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
    this.writing = false;
  };

  Editor.prototype.render = function () {
    var t = this.t;
    var self = this;
    this.box.textContent = "";
    if (!this.root) {
      this.box.appendChild(el("p", { class: "segment-editor-note", text: t.too_complex }));
      return;
    }
    var opId = uid("op");
    this.box.appendChild(el("div", { class: "segment-editor-op" }, [
      el("label", { for: opId, text: t.match }),
      this.opSelect(opId, this.root)
    ]));
    var list = el("ol", { class: "segment-rows" });
    this.root.items.forEach(function (item, n) {
      list.appendChild(item.leaf ? self.leafRow(item, self.root, n, t.condition) : self.groupRow(item, n));
    });
    if (!this.root.items.length) list.appendChild(el("li", { class: "segment-empty", text: t.none }));
    this.box.appendChild(list);
    var addId = uid("add");
    var add = el("button", { type: "button", class: "outline", id: addId, text: t.add });
    add.addEventListener("click", function () { self.add(self.root, false); });
    var group = el("button", { type: "button", class: "outline secondary", text: t.add_group });
    group.addEventListener("click", function () { self.add(self.root, true); });
    this.box.appendChild(el("p", { class: "segment-editor-add" }, [add, document.createTextNode(" "), group]));
    this.addId = addId;
  };

  Editor.prototype.add = function (group, asGroup) {
    var item = { neg: false, leaf: { type: "signed" } };
    if (asGroup) item = { neg: false, group: { op: "any", items: [item] } };
    group.items.push(item);
    this.write();
    this.render();
    // Carry on from the new condition's type.
    (item.leaf ? item : item.group.items[0]).typeSelect.focus();
  };

  Editor.prototype.opSelect = function (id, group) {
    var self = this;
    var select = el("select", { id: id }, [
      el("option", { value: "all", text: this.t.all, selected: group.op === "all" }),
      el("option", { value: "any", text: this.t.any, selected: group.op === "any" })
    ]);
    select.addEventListener("change", function () { group.op = select.value; self.write(); });
    return select;
  };

  Editor.prototype.notBox = function (item) {
    var self = this;
    var box = el("input", { type: "checkbox", checked: item.neg });
    box.addEventListener("change", function () { item.neg = box.checked; self.write(); });
    return el("label", { class: "segment-not" }, [box, document.createTextNode(" " + this.t.not)]);
  };

  Editor.prototype.removeButton = function (group, index, label) {
    var self = this;
    var button = el("button", { type: "button", class: "outline secondary", text: this.t.remove, "aria-label": label });
    button.addEventListener("click", function () {
      group.items.splice(index, 1);
      self.write();
      self.render();
      document.getElementById(self.addId).focus();
    });
    return button;
  };

  Editor.prototype.groupRow = function (item, index) {
    var t = this.t;
    var self = this;
    var name = t.group.replace("%(n)s", index + 1);
    var opId = uid("gop");
    var rows = el("ol", { class: "segment-rows" });
    item.group.items.forEach(function (inner, n) {
      rows.appendChild(self.leafRow(inner, item.group, n, name + " · " + t.condition));
    });
    var add = el("button", { type: "button", class: "outline", text: t.add_to_group });
    add.addEventListener("click", function () { self.add(item.group, false); });
    return el("li", {}, [el("fieldset", { class: "segment-group" }, [
      el("legend", { text: name }),
      el("label", { for: opId, text: t.match }),
      this.opSelect(opId, item.group),
      this.notBox(item),
      rows,
      el("p", {}, [add, document.createTextNode(" "), this.removeButton(this.root, index, t.remove + ": " + name)])
    ])]);
  };

  Editor.prototype.leafRow = function (item, group, index, prefix) {
    var t = this.t;
    var self = this;
    var name = prefix.replace("%(n)s", index + 1);
    var typeId = uid("type");
    var type = el("select", { id: typeId, "data-role": "type" });
    Object.keys(FIELDS).forEach(function (kind) {
      if (kind === "segment" && !self.choices.segments.length && item.leaf.type !== "segment") return;
      type.appendChild(el("option", { value: kind, text: t.types[kind], selected: item.leaf.type === kind }));
    });
    item.typeSelect = type;
    type.addEventListener("change", function () {
      item.leaf = { type: type.value };
      self.write();
      self.render();
      item.typeSelect.focus();  // the row was drawn anew: keep the keyboard where it was
    });
    var fields = el("div", { class: "segment-fields" });
    FIELDS[item.leaf.type].forEach(function (spec) { fields.appendChild(self.field(item.leaf, spec)); });
    return el("li", {}, [el("fieldset", { class: "segment-condition" }, [
      el("legend", { text: name }),
      el("label", { for: typeId, text: t.type }),
      type,
      this.notBox(item),
      fields,
      this.removeButton(group, index, t.remove + ": " + name)
    ])]);
  };

  Editor.prototype.field = function (leaf, spec) {
    var self = this;
    var t = this.t;
    var key = spec[0];
    var control = spec[1];
    var id = uid(key);
    var changed = function () { self.write(); };
    if (control === "checks") {
      var chosen = leaf[key] || [];
      var boxes = this.choices[spec[2]].map(function (pair) {
        var box = el("input", { type: "checkbox", value: String(pair[0]), checked: chosen.indexOf(pair[0]) >= 0 });
        box.addEventListener("change", function () {
          var values = [];
          boxes.forEach(function (b) { if (b.input.checked) values.push(b.value); });
          if (values.length) leaf[key] = values; else delete leaf[key];
          changed();
        });
        return { input: box, value: pair[0], label: el("label", {}, [box, document.createTextNode(" " + pair[1])]) };
      });
      var set = el("fieldset", { class: "segment-checks" }, [el("legend", { text: t.fields[key] })]);
      boxes.forEach(function (b) { set.appendChild(b.label); });
      if (!boxes.length) set.appendChild(el("p", { text: t.nothing }));
      return set;
    }
    if (control === "inactive") {
      var unit = "days" in leaf ? "days" : "alerts";
      var unitId = uid("unit");
      var number = el("input", { id: id, type: "number", min: "1", max: "10000", value: leaf[unit] || "" });
      var unitSelect = el("select", { id: unitId }, [
        el("option", { value: "alerts", text: t.fields.alerts, selected: unit === "alerts" }),
        el("option", { value: "days", text: t.fields.days, selected: unit === "days" })
      ]);
      var update = function () {
        var n = parseInt(number.value, 10);
        delete leaf.alerts;
        delete leaf.days;
        if (n > 0) leaf[unitSelect.value] = n;
        changed();
      };
      number.addEventListener("input", update);
      unitSelect.addEventListener("change", update);
      return el("div", { class: "segment-field" }, [
        el("label", { for: id, text: t.fields.last }), number,
        el("label", { for: unitId, text: t.fields.unit }), unitSelect
      ]);
    }
    var input;
    if (control === "select" || control === "optional") {
      input = el("select", { id: id });
      input.appendChild(el("option", { value: "", text: control === "optional" ? t.any_petition : t.choose }));
      var options = this.choices[spec[2]];
      var known = options.some(function (pair) { return pair[0] === leaf[key]; });
      if (leaf[key] !== undefined && !known) {
        // Something the choices do not hold (deleted, or too old to be listed): kept, by its id.
        input.appendChild(el("option", { value: String(leaf[key]), text: "#" + leaf[key], selected: true }));
      }
      options.forEach(function (pair) {
        input.appendChild(el("option", { value: String(pair[0]), text: pair[1] + " (#" + pair[0] + ")", selected: pair[0] === leaf[key] }));
      });
      input.addEventListener("change", function () {
        if (input.value) leaf[key] = parseInt(input.value, 10); else delete leaf[key];
        changed();
      });
    } else if (control === "codes") {
      input = el("input", { id: id, type: "text", value: (leaf[key] || []).join(", "), autocapitalize: "characters", placeholder: "BY, UA" });
      input.addEventListener("input", function () {
        var codes = input.value.toUpperCase().split(/[\s,;]+/).filter(function (c) { return c; });
        if (codes.length) leaf[key] = codes; else delete leaf[key];
        changed();
      });
    } else {
      var number0 = control === "index";
      input = el("input", number0
        ? { id: id, type: "number", min: "0", value: leaf[key] === undefined ? "" : leaf[key] }
        : { id: id, type: "date", value: leaf[key] || "" });
      input.addEventListener("input", function () {
        var value = number0 ? parseInt(input.value, 10) : input.value;
        if (number0 ? !isNaN(value) : value) leaf[key] = value; else delete leaf[key];
        changed();
      });
    }
    return el("div", { class: "segment-field" }, [el("label", { for: id, text: t.fields[key] }), input]);
  };

  // --- the live count where there is no alert form around it (the segment's own page) ---

  function selfCount(box, textarea) {
    var out = document.getElementById("segment-count");
    var langs = document.getElementById("segment-languages");
    if (!out || !box.dataset.countUrl) return;
    var timer = null;
    function refresh() {
      var base = box.dataset.countUrl;
      var url = base + (base.indexOf("?") >= 0 ? "&" : "?") + "conditions=" + encodeURIComponent(textarea.value);
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          out.textContent = data.count === null ? "?" : data.count;
          if (langs) langs.textContent = (data.languages || []).map(function (l) { return l[1] + ": " + l[2]; }).join(" · ");
        });
    }
    textarea.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 300);
    });
    refresh();
  }

  function listCounts() {
    document.querySelectorAll("output[data-count-src]").forEach(function (out) {
      fetch(out.dataset.countSrc, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) { out.textContent = data.count === null ? "?" : data.count; });
    });
  }

  function start() {
    listCounts();
    var box = document.getElementById("segment-editor");
    var textarea = document.getElementById("conditions");
    var data = document.getElementById("segment-choices");
    if (!box || !textarea || !data) return;
    box.hidden = false;
    window.ClarionSegmentEditor = new Editor(box, textarea, JSON.parse(data.textContent));
    selfCount(box, textarea);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
