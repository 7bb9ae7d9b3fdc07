/* Copy buttons of the console (the audit digest): progressive enhancement only.
   The fields are read-only and selectable without it; the buttons stay hidden
   until this runs, and say in a status region what they did. */
(function () {
  "use strict";

  function reveal(root) {
    root.querySelectorAll("button[data-copy][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function say(button, words) {
    var status = document.getElementById(button.getAttribute("data-copy-status"));
    if (status) {
      status.textContent = words;
    }
  }

  // Where the clipboard API is not allowed (no secure context, no permission):
  // select the text and ask the browser to copy it, or leave it selected.
  function selectAndCopy(button, field) {
    field.focus();
    field.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (ignored) {
      copied = false;
    }
    say(button, copied ? button.getAttribute("data-copied") || "Copied."
                       : "Selected: press Ctrl+C (or ⌘C) to copy.");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) {
      return;
    }
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) {
      return;
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () {
        say(button, button.getAttribute("data-copied") || "Copied.");
      }, function () {
        selectAndCopy(button, field);
      });
    } else {
      selectAndCopy(button, field);
    }
  });

  // htmx brings the digest in after the page loaded.
  document.addEventListener("htmx:load", function (event) {
    reveal(event.target);
  });
  reveal(document);
})();
