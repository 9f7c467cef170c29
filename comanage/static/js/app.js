// Small progressive enhancements; no inline scripts (the CSP forbids them).
document.addEventListener("htmx:configRequest", function (event) {
  var token = document.querySelector('meta[name="csrf-token"]');
  if (token) { event.detail.headers["X-CSRFToken"] = token.content; }
});
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el.matches && el.matches("select[data-navigate]")) { window.location = el.value; }
});
// `<select data-autosubmit>` submits its form on change (instead of an inline onchange, which
// the CSP blocks).
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el.matches && el.matches("select[data-autosubmit]") && el.form) { el.form.submit(); }
});
// The main menu collapses behind its "Menu" button on narrow screens (CSS shows the button
// and hides the menu only once this script has marked the page: without it the menu stays
// open).
(function () {
  var button = document.querySelector("[data-menu-toggle]");
  if (!button) { return; }
  button.hidden = false;
  document.documentElement.classList.add("js-menu");
  button.addEventListener("click", function () {
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    document.documentElement.classList.toggle("menu-open", open);
  });
})();
// On a phone a table's rows become cards (CSS below 600 px): each cell is shown under the name
// of its column, so an amount is read whole instead of being cut at the window's edge. The
// column names come from the table's own header row; a table can opt out with class="no-stack".
(function () {
  function label(table) {
    if (table.classList.contains("no-stack") || table.closest(".chart, svg")) { return; }
    var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head) { return; }
    var names = [];
    Array.prototype.forEach.call(head.cells, function (cell) {
      var span = cell.colSpan || 1;
      for (var i = 0; i < span; i += 1) { names.push(i === 0 ? cell.textContent.trim() : ""); }
    });
    var bodies = Array.prototype.slice.call(table.tBodies);
    if (table.tFoot) { bodies.push(table.tFoot); }
    bodies.forEach(function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var span = cell.colSpan || 1;
          // A cell across the whole row (a total's caption, "nothing yet") needs no column name.
          var name = span >= names.length ? "" : names[column] || "";
          if (!cell.hasAttribute("data-label")) { cell.setAttribute("data-label", name); }
          column += span;
        });
      });
    });
    table.classList.add("stacks");
  }
  function labelAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("table"), label);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { labelAll(document); });
  } else {
    labelAll(document);
  }
  document.addEventListener("htmx:load", function (event) { labelAll(event.target); });
})();
