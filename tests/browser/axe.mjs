/// Accessibility checks shared by the chat's and the document's pages:
/// axe-core (the engine behind Lighthouse and DevTools) run in the real
/// page, in each of the looks a class may use, reporting serious and
/// critical violations (colour contrast included: WCAG AA, 4.5:1 for text).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The theme and type size a page is checked in (set as the page's own
 * settings would: in localStorage, before its scripts run). */
export const LOOKS = [
  { name: 'light', theme: 'light', large: false },
  { name: 'dark', theme: 'dark', large: false },
  { name: 'light, Large type', theme: 'light', large: true },
  { name: 'dark, Large type', theme: 'dark', large: true },
];

/**
 * Runs axe-core in the page (page.evaluate runs outside the page's CSP, so
 * the strict policy stays on) once animations have finished — a message's
 * "arrive" flash, so colours are final — and returns its serious and
 * critical violations, each as one line (with up to five of its elements).
 */
export async function seriousAxeViolations(page) {
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const finite = document.getAnimations().filter((a) => a.effect?.getComputedTiming().iterations !== Infinity);
    await Promise.all(finite.map((a) => a.finished.catch(() => {})));
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => {
        const nodes = v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')} — ${n.failureSummary?.split('\n').slice(1, 2).join('')}`);
        return `${v.id} [${v.impact}] ${v.help}\n    ${nodes.join('\n    ')}`;
      });
  });
}

/**
 * Opens every path of `paths` in every look, lets `ready(page, path)` bring
 * the page to the state worth checking, and returns one line per serious or
 * critical violation (empty when there is none).
 */
export async function seriousViolationsInLooks(t, { browser, base, paths, looks = LOOKS, viewport, ready }) {
  const failures = [];
  for (const look of looks) {
    for (const path of paths) {
      const context = await browser.newContext({ viewport });
      await context.addInitScript(({ theme, large }) => {
        localStorage.setItem('weebsockets.theme', theme);
        localStorage.setItem('weebsockets.large', large ? '1' : '0');
        localStorage.setItem('weebsockets.name', 'axe');
      }, look);
      const page = await context.newPage();
      await page.goto(base + path);
      await ready(page, path);
      for (const v of await seriousAxeViolations(page)) failures.push(`${path} (${look.name}): ${v}`);
      await context.close();
    }
    t.diagnostic(`${look.name}: ${paths.length} pages checked`);
  }
  return failures;
}
