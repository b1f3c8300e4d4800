// The board's keyboard (issue 14): "/" search, "j"/"k" move through the list, Enter open,
// "c" create, "?" list the shortcuts. Keys typed into a field are the field's.
(function () {
  "use strict";
  var SHORTCUTS = [
    ["/", "Search this list"],
    ["j / k", "Next / previous row"],
    ["Enter", "Open the selected row"],
    ["c", "Create a new one"],
    ["?", "Show these shortcuts"],
    ["Esc", "Close these shortcuts"],
  ];
  var current = -1;

  function typing(event) {
    var target = event.target;
    return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#result_list tbody tr"));
  }
  function select(index) {
    var all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) {
      row.classList.toggle("board-selected", i === current);
      row.style.outline = i === current ? "2px solid var(--color-primary-500, #9333ea)" : "";
      row.style.outlineOffset = i === current ? "-2px" : "";
    });
    all[current].scrollIntoView({ block: "nearest" });
  }
  function open() {
    var row = rows()[current];
    var link = row && row.querySelector("th a, td a");
    if (link) window.location.href = link.href;
  }
  function create() {
    var add = document.querySelector('a[href$="/add/"]');
    if (add) window.location.href = add.href;
  }
  function help() {
    var existing = document.getElementById("board-shortcuts");
    if (existing) {
      existing.remove();
      return;
    }
    var box = document.createElement("div");
    box.id = "board-shortcuts";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "Keyboard shortcuts");
    box.style.cssText =
      "position:fixed;right:1rem;bottom:1rem;z-index:100;background:#fff;color:#111;" +
      "border:1px solid #ddd;border-radius:8px;padding:1rem 1.25rem;" +
      "box-shadow:0 10px 30px rgba(0,0,0,.15);font-size:14px;min-width:16rem";
    var title = document.createElement("strong");
    title.textContent = "Keyboard shortcuts";
    box.appendChild(title);
    var list = document.createElement("dl");
    list.style.cssText = "display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin-top:.5rem";
    SHORTCUTS.forEach(function (pair) {
      var key = document.createElement("dt");
      var kbd = document.createElement("kbd");
      kbd.textContent = pair[0];
      kbd.style.cssText = "font-family:monospace;background:#f3f4f6;padding:0 .35rem;border-radius:4px";
      key.appendChild(kbd);
      var what = document.createElement("dd");
      what.textContent = pair[1];
      list.appendChild(key);
      list.appendChild(what);
    });
    box.appendChild(list);
    document.body.appendChild(box);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var box = document.getElementById("board-shortcuts");
      if (box) box.remove();
      return;
    }
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "/") {
      var search = document.getElementById("searchbar");
      if (search) {
        event.preventDefault();
        search.focus();
      }
    } else if (event.key === "j") {
      select(current + 1);
    } else if (event.key === "k") {
      select(current - 1);
    } else if (event.key === "Enter" && current >= 0) {
      open();
    } else if (event.key === "c") {
      create();
    } else if (event.key === "?") {
      help();
    }
  });
})();
