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
