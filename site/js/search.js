// Title search: case-insensitive; prefix matches first, then substring
// matches, each in row order.

/** Lower-cased copy of every title, built once and reused for every query. */
export function foldTitles(titles) {
  return titles.map((t) => t.toLocaleLowerCase());
}

/** Rows of up to limit titles matching query (prefix matches before substring matches). */
export function searchTitles(folded, query, limit) {
  const q = query.trim().toLocaleLowerCase();
  if (!q) return [];
  const prefix = [];
  const inside = [];
  for (let i = 0; i < folded.length; i++) {
    const at = folded[i].indexOf(q);
    if (at === 0) {
      prefix.push(i);
      if (prefix.length >= limit) break;
    } else if (at > 0 && inside.length < limit) {
      inside.push(i);
    }
  }
  return prefix.concat(inside).slice(0, limit);
}
