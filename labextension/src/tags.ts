/**
 * Editing a cell's `metadata.tags` list without typing tags.
 *
 * Pure functions from a tag list to a new tag list, mirroring the tag language of
 * `jupyter_mlops/tags.py` (both the native and Kale's dialect). They only ever remove the
 * tags they replace: tags for other tools survive every edit, in their order. When an edit
 * changes nothing the input array itself is returned, so callers can skip the write and
 * leave the notebook clean.
 */

/** The roles a cell can claim; a cell claims at most one. */
export type Role = 'stage' | 'setup' | 'skip' | 'parameters';

/** The roles that are plain tags, as opposed to `stage:NAME`. */
export type PlainRole = Exclude<Role, 'stage'>;

const STAGE_NAME = /^[a-z][a-z0-9_]*$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every spelling of each plain role, ours first: Kale's are read as the same role. */
const PLAIN_ROLE_TAGS: Record<PlainRole, readonly string[]> = {
  setup: ['setup', 'imports', 'functions'],
  skip: ['skip'],
  parameters: ['parameters', 'pipeline-parameters']
};
const METRICS_TAGS: readonly string[] = ['metrics', 'pipeline-metrics'];
const STAGE_PREFIXES: readonly string[] = ['stage', 'block', 'step'];
const AFTER_PREFIXES: readonly string[] = ['after', 'prev'];

function split(tag: string): { prefix: string; value: string } | null {
  const colon = tag.indexOf(':');
  if (colon < 0) {
    return null;
  }
  return { prefix: tag.slice(0, colon).trim(), value: tag.slice(colon + 1).trim() };
}

function hasPrefix(tag: string, prefixes: readonly string[]): boolean {
  const parts = split(tag);
  return parts !== null && prefixes.includes(parts.prefix);
}

/** The stage a tag list names (`stage:`, `block:` or `step:`), or null. */
export function stageOf(tags: readonly string[]): string | null {
  for (const tag of tags) {
    const parts = split(tag);
    if (parts && STAGE_PREFIXES.includes(parts.prefix)) {
      return parts.value;
    }
  }
  return null;
}

/** Whether the tags claim a role, in either dialect. */
export function hasRole(tags: readonly string[], role: Role): boolean {
  if (role === 'stage') {
    return stageOf(tags) !== null;
  }
  return tags.some(tag => PLAIN_ROLE_TAGS[role].includes(tag.trim()));
}

export function hasMetrics(tags: readonly string[]): boolean {
  return tags.some(tag => METRICS_TAGS.includes(tag.trim()));
}

/** The variables logged as models (`model:VAR`). */
export function modelsOf(tags: readonly string[]): string[] {
  const models: string[] = [];
  for (const tag of tags) {
    const parts = split(tag);
    if (parts?.prefix === 'model') {
      models.push(parts.value);
    }
  }
  return models;
}

function isRoleTag(tag: string): boolean {
  const plain = tag.trim();
  return (
    Object.values(PLAIN_ROLE_TAGS).some(spellings => spellings.includes(plain)) ||
    hasPrefix(tag, STAGE_PREFIXES)
  );
}

/** Return `next`, or `tags` itself when both hold the same tags in the same order. */
function unchangedIfEqual(tags: readonly string[], next: string[]): readonly string[] {
  const same = tags.length === next.length && tags.every((tag, i) => tag === next[i]);
  return same ? tags : next;
}

/**
 * Drop the tags `replaced` matches and put `role` where the first of them was (first in
 * the list when there was none), so that re-applying a role is not an edit.
 */
function replaceRole(
  tags: readonly string[],
  role: string,
  replaced: (tag: string) => boolean
): readonly string[] {
  const next: string[] = [];
  let placed = false;
  for (const tag of tags) {
    if (!replaced(tag)) {
      next.push(tag);
    } else if (!placed) {
      next.push(role);
      placed = true;
    }
  }
  if (!placed) {
    next.unshift(role);
  }
  return unchangedIfEqual(tags, next);
}

/**
 * Make the cell start (or continue) stage `name`.
 *
 * Every other role tag goes, whatever its dialect. `after:`/`prev:` dependencies stay,
 * since they still describe this stage, except one on the stage itself.
 */
export function setStage(tags: readonly string[], name: string): readonly string[] {
  if (!isValidStageName(name)) {
    throw new Error(`\`${name}\` is not a valid stage name`);
  }
  const existing = tags.find(tag => hasPrefix(tag, STAGE_PREFIXES) && stageOf([tag]) === name);
  return replaceRole(tags, existing ?? `stage:${name}`, tag => {
    const parts = split(tag);
    const selfDependency = parts && AFTER_PREFIXES.includes(parts.prefix) && parts.value === name;
    return isRoleTag(tag) || Boolean(selfDependency);
  });
}

/**
 * Give the cell a plain role (setup, skip or parameters).
 *
 * Other role tags go, and so do `after:`/`prev:`: a dependency only has a meaning on a
 * stage's cell, so it belongs to the stage role being replaced.
 */
export function setRole(tags: readonly string[], role: PlainRole): readonly string[] {
  const existing = tags.find(tag => PLAIN_ROLE_TAGS[role].includes(tag.trim()));
  return replaceRole(
    tags,
    existing ?? role,
    tag => isRoleTag(tag) || hasPrefix(tag, AFTER_PREFIXES)
  );
}

/** Remove a plain role in every dialect; other tags stay. */
export function clearRole(tags: readonly string[], role: PlainRole): readonly string[] {
  return unchangedIfEqual(
    tags,
    tags.filter(tag => !PLAIN_ROLE_TAGS[role].includes(tag.trim()))
  );
}

/** Remove whatever role the cell claims, with the stage's dependencies. */
export function clearAllRoles(tags: readonly string[]): readonly string[] {
  return unchangedIfEqual(
    tags,
    tags.filter(tag => !isRoleTag(tag) && !hasPrefix(tag, AFTER_PREFIXES))
  );
}

/** Turn the `metrics` flag on or off; Kale's `pipeline-metrics` counts as on. */
export function setMetrics(tags: readonly string[], on: boolean): readonly string[] {
  if (on) {
    return hasMetrics(tags) ? tags : [...tags, 'metrics'];
  }
  return unchangedIfEqual(
    tags,
    tags.filter(tag => !METRICS_TAGS.includes(tag.trim()))
  );
}

/** Log `variable` as a model after this cell's stage (`model:VAR`), once. */
export function addModel(tags: readonly string[], variable: string): readonly string[] {
  if (!isIdentifier(variable)) {
    throw new Error(`\`${variable}\` is not a Python variable name`);
  }
  return modelsOf(tags).includes(variable) ? tags : [...tags, `model:${variable}`];
}

export function isValidStageName(name: string): boolean {
  return STAGE_NAME.test(name);
}

export function isIdentifier(name: string): boolean {
  return IDENTIFIER.test(name);
}

/** A valid stage name close to what the user typed (same rule as the Python side). */
export function suggestStageName(text: string): string {
  const name = text
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!name) {
    return 'stage';
  }
  return /^[a-z]/.test(name) ? name : `stage_${name}`;
}

/** Normalise whatever a notebook holds under `metadata.tags` to a list of strings. */
export function readTags(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((tag): tag is string => typeof tag === 'string') : [];
}
