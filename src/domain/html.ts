/**
 * Text made safe to stand in HTML, in an element or a quoted attribute: `& < > " '` become entities. The one
 * escape every page uses (operator pages, the API docs page, setup pages).
 */
export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)
