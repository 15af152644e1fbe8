// The page frame: the theme and "large type" buttons in the top bar.
// Both choices are remembered in localStorage (see theme.js, which applies
// them before the first paint).

const root = document.documentElement;

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Not remembered; the choice still applies to this page.
  }
}

/** Tells canvases (timelines, charts) to pick up the new colours. */
function announce() {
  document.dispatchEvent(new CustomEvent('weebsockets:appearance'));
}

const themeButton = document.getElementById('theme-toggle');
const largeButton = document.getElementById('large-type');

function showState() {
  const dark = root.dataset.theme === 'dark';
  themeButton.setAttribute('aria-pressed', String(dark));
  themeButton.title = dark ? 'Switch to the light theme' : 'Switch to the dark theme';
  largeButton.setAttribute('aria-pressed', String(root.classList.contains('large-type')));
}

themeButton.addEventListener('click', () => {
  root.dataset.theme = root.dataset.theme === 'dark' ? 'light' : 'dark';
  remember('weebsockets.theme', root.dataset.theme);
  showState();
  announce();
});

largeButton.addEventListener('click', () => {
  const large = root.classList.toggle('large-type');
  remember('weebsockets.large', large ? '1' : '0');
  showState();
  announce();
});

showState();
