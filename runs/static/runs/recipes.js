/* Artifact page: while a recipe's output is queued or running, refetch the preview
   fragment until it is final, so the output arrives without a reload (docs/recipes.md). */
(function () {
  "use strict";
  var section = document.querySelector("section.preview[data-preview-url]");
  if (!section) return;
  var tries = 0;
  function pending() {
    return section.querySelector('section.rendition[data-viewer="recipe"].status-pending, ' +
                                 'section.rendition[data-viewer="recipe"].status-rendering');
  }
  function poll() {
    if (!pending() || tries++ > 600) return;
    fetch(section.dataset.previewUrl, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) section.innerHTML = html; setTimeout(poll, 500); })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
})();
