/**
 * Long names (stages, parameters, run ids, model URIs) in narrow places: where they may
 * break, and how they wrap onto lines of a given width. Pure, so the cell badges, the DAG
 * and the sidebar all break a name the same way.
 */

/**
 * `text` cut into the pieces a line may end between: after `_`, `-`, `/`, `.` and `:`, and
 * before `@` (`models:/` `wine_` `classifier` `@candidate`). Joined, the pieces are `text`.
 */
export function breakPoints(text: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    const next = text[i + 1];
    // A run of separators (`__init__`, `models:/`) stays together.
    const after = '_-/.:'.includes(char) && next !== undefined && !'_-/.:'.includes(next);
    const before = next === '@' && i + 1 > start;
    if (after || before) {
      pieces.push(text.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < text.length || pieces.length === 0) {
    pieces.push(text.slice(start));
  }
  return pieces;
}

/** The width of a text in pixels (a canvas' `measureText`, or a count of characters). */
export type Measure = (text: string) => number;

/**
 * `text` as lines no wider than `width`: whole pieces of `breakPoints` where they fit, and a
 * piece wider than a line alone cut where it must. Nothing is left out: the lines joined are
 * `text`.
 */
export function wrapText(text: string, width: number, measure: Measure): string[] {
  const lines: string[] = [];
  let line = '';
  for (const piece of breakPoints(text)) {
    if (line && measure(line + piece) > width) {
      lines.push(line);
      line = '';
    }
    line += piece;
    while (line.length > 1 && measure(line) > width) {
      const cut = fitting(line, width, measure);
      lines.push(line.slice(0, cut));
      line = line.slice(cut);
    }
  }
  if (line || lines.length === 0) {
    lines.push(line);
  }
  return lines;
}

/** How many leading characters of `text` fit in `width` (at least one). */
function fitting(text: string, width: number, measure: Measure): number {
  let count = 1;
  while (count < text.length && measure(text.slice(0, count + 1)) <= width) {
    count++;
  }
  return count;
}

/** A `Measure` for a CSS font, by a canvas; a rough one where there is no canvas. */
export function fontMeasure(font: string): Measure {
  const context =
    typeof document === 'undefined' ? null : document.createElement('canvas').getContext('2d');
  if (!context) {
    const size = parseFloat(/(\d+(?:\.\d+)?)px/.exec(font)?.[1] ?? '12');
    return text => text.length * size * 0.62;
  }
  context.font = font;
  const cache = new Map<string, number>();
  return text => {
    let width = cache.get(text);
    if (width === undefined) {
      width = context.measureText(text).width;
      cache.set(text, width);
    }
    return width;
  };
}
