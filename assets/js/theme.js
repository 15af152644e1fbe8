// Applies the saved colour theme and type size before the first paint.
//
// This is the one classic (non-module) script: it sits in <head> and blocks
// rendering for the microsecond it takes, so the page never flashes light
// before turning dark. Everything else is an ES module, which runs later.
(() => {
  const root = document.documentElement;
  let theme = null;
  let large = false;
  try {
    theme = localStorage.getItem('weebsockets.theme');
    large = localStorage.getItem('weebsockets.large') === '1';
  } catch {
    // Storage can be blocked (private mode, strict settings): use defaults.
  }
  if (theme !== 'dark' && theme !== 'light') {
    theme = matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }
  root.dataset.theme = theme;
  root.classList.toggle('large-type', large);
})();
