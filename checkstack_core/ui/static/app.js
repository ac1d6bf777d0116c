// Checkstack's only script of its own. Everything works without it: it adds copying a secret
// to the clipboard and moves the keyboard focus to what htmx just put on the page.
(function () {
  "use strict";

  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) return;
    var text = target.value !== undefined ? target.value : target.textContent;
    var status = document.getElementById(button.getAttribute("aria-describedby") || "");
    function done(message) {
      if (status) status.textContent = message;
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(
        function () { done("Copied to the clipboard."); },
        function () { target.select && target.select(); done("Select the secret and copy it."); }
      );
    } else {
      if (target.select) target.select();
      done("Select the secret and copy it.");
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (button) {
      event.preventDefault();
      copy(button);
    }
  });

  // After htmx swaps content in, focus the first element that asks for it (a new secret, an
  // error message), so keyboard and screen-reader users land on what changed.
  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.detail && event.detail.elt ? event.detail.elt : document;
    var wanted = root.querySelector ? root.querySelector("[data-autofocus]") : null;
    if (wanted) wanted.focus();
  });

  // The same for a whole page that shows something new (a secret just created).
  document.addEventListener("DOMContentLoaded", function () {
    var wanted = document.querySelector("[data-autofocus]");
    if (wanted) wanted.focus();
  });

  // Copy buttons only work with scripts: show them now.
  document.documentElement.classList.add("js");
})();
