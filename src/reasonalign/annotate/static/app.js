// Keyboard shortcuts of the rating page (the page lists them). The forms work without this file.
// Shortcuts are ignored while typing in a text field, and while a modifier key is held.
(function () {
  "use strict";

  function isTyping(target) {
    if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
    if (target instanceof HTMLInputElement) return !["checkbox", "radio", "submit", "button"].includes(target.type);
    return Boolean(target && target.isContentEditable);
  }

  function go(id) {
    const link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("rating-form");
    if (!form) return;  // only the rating page has shortcuts
    const comment = document.getElementById("comment");
    let submitting = false;  // one rating per page: a second key press while the next page loads does nothing
    form.addEventListener("submit", function () { submitting = true; });

    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "Escape" && event.target === comment) {
        comment.blur();
        event.preventDefault();
        return;
      }
      if (isTyping(event.target) || submitting) return;

      let handled = true;
      switch (event.key) {
        // a ticked criterion with "Aligned" is sent anyway: the server refuses it and says why
        case "a": document.getElementById("aligned-yes").click(); break;
        case "m": document.getElementById("aligned-no").click(); break;
        case "1": case "2": case "3": case "4": {
          const box = document.getElementById("criterion-" + event.key);
          if (box) box.click();
          break;
        }
        case "j": case "ArrowRight": go("next"); break;
        case "k": case "ArrowLeft": go("prev"); break;
        case "c": comment.focus(); break;  // preventDefault below keeps the "c" out of the comment
        default: handled = false;
      }
      if (handled) event.preventDefault();
    });
  });
})();
