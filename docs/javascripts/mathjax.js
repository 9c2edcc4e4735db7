// MathJax 3 for the maths that pymdownx.arithmatex (generic mode) wraps in
// <span class="arithmatex">\( ... \)</span> and <div class="arithmatex">\[ ... \]</div>.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex"
  }
};
