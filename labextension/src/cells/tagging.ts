/**
 * Writing tag edits to cells, and the dialogs that ask for a stage or a model variable.
 * The edits themselves are the pure functions of `tags.ts`.
 */
import type { Cell } from '@jupyterlab/cells';
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import type { Notebook } from '@jupyterlab/notebook';

import { isIdentifier, isValidStageName, readTags, suggestStageName } from '../tags';

export type TagEdit = (tags: readonly string[]) => readonly string[];

/**
 * Apply `edit` to each cell's `metadata.tags`, as one undo step. Only the `tags` key is
 * written, and only where the edit changed something: other metadata and the outputs are
 * never touched, and an edit that changes nothing leaves the notebook clean.
 */
export function editTags(notebook: Notebook, cells: readonly Cell[], edit: TagEdit): void {
  const apply = () => {
    for (const cell of cells) {
      const tags = readTags(cell.model.getMetadata('tags'));
      const next = edit(tags);
      if (next === tags) {
        continue;
      }
      if (next.length > 0) {
        cell.model.setMetadata('tags', [...next]);
      } else {
        cell.model.deleteMetadata('tags');
      }
    }
  };
  if (notebook.model) {
    notebook.model.sharedModel.transact(apply);
  } else {
    apply();
  }
}

/**
 * Ask for a stage: pick one of `stages` or type a new name. A name that is not a valid
 * stage name is not refused outright: the user is offered the nearest valid one.
 */
export async function askStageName(stages: string[], current: string): Promise<string | null> {
  const answer = await InputDialog.getItem({
    title: 'Pipeline stage of the selected cells',
    label: 'Pick a stage or name a new one (lowercase, like load_data):',
    items: stages,
    current: current || undefined,
    editable: true,
    placeholder: 'load_data',
    okLabel: 'Set stage'
  });
  const name = answer.button.accept ? (answer.value ?? '').trim() : '';
  if (!name) {
    return null;
  }
  if (isValidStageName(name)) {
    return name;
  }
  const fixed = suggestStageName(name);
  const confirm = await showDialog({
    title: 'Not a valid stage name',
    body: `Stage names are lowercase identifiers ([a-z][a-z0-9_]*). Use “${fixed}” instead of “${name}”?`,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: `Use ${fixed}` })]
  });
  return confirm.button.accept ? fixed : null;
}

/** Ask for the variable to log as a model, offering the names the cells touch. */
export async function askModelVariable(candidates: string[]): Promise<string | null> {
  const answer = await InputDialog.getItem({
    title: 'Log a variable as an MLflow model',
    label: 'Variable holding the trained model (logged and registered after this stage):',
    items: candidates,
    editable: true,
    placeholder: 'model',
    okLabel: 'Log as model'
  });
  const variable = answer.button.accept ? (answer.value ?? '').trim() : '';
  if (!variable) {
    return null;
  }
  if (isIdentifier(variable)) {
    return variable;
  }
  await showDialog({
    title: 'Not a variable name',
    body: `“${variable}” is not a Python variable name.`,
    buttons: [Dialog.okButton()]
  });
  return null;
}
