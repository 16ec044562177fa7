// The dashboard's only script of its own (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";
  function picks() { return document.querySelectorAll("input.pick"); }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "select-all") {
      picks().forEach(function (box) { box.checked = event.target.checked; });
    }
  });
  // A live refresh of a list must not throw away the rows a person has ticked.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.id === "dead-live") {
      var ticked = Array.prototype.some.call(picks(), function (box) { return box.checked; });
      if (ticked) { event.preventDefault(); }
    }
  });
})();
