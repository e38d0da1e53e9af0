import { ApiError } from '../errors';
import { isGone, PolledStates } from '../polling';

interface Job {
  /** what is followed, or null before it started */
  id: string | null;
  done: boolean;
  polls: number;
}

const IDLE: Job = { id: null, done: false, polls: 0 };

/** The smallest manager: polls a job until `finish` marks it done. */
class Jobs extends PolledStates<Job, null> {
  constructor(pollInterval?: number) {
    super(IDLE, { api: null, pollInterval });
  }

  readonly asked: string[] = [];
  readonly finished = new Set<string>();

  start(key: string, id: string): void {
    this._set(key, { id, done: false, polls: 0 });
    this._schedulePoll(key);
  }

  protected _polledId(state: Job): string | null {
    return state.done ? null : state.id;
  }

  protected async _pollOnce(key: string, id: string): Promise<void> {
    this.asked.push(id);
    const state = this.get(key);
    if (state.id === id) {
      this._set(key, { ...state, done: this.finished.has(id), polls: state.polls + 1 });
    }
  }
}

async function tick(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('PolledStates', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('gives the idle state to a notebook it knows nothing about', () => {
    const jobs = new Jobs();
    expect(jobs.get('nb')).toBe(IDLE);
    jobs.dispose();
  });

  it('polls every interval until the state no longer follows anything', async () => {
    const jobs = new Jobs(500);
    const changed: string[] = [];
    jobs.changed.connect((_, key) => changed.push(key));
    jobs.start('nb', 'a');
    await tick(499);
    expect(jobs.asked).toEqual([]);
    await tick(1);
    await tick(500);
    expect(jobs.asked).toEqual(['a', 'a']);
    jobs.finished.add('a');
    await tick(500);
    await tick(5000);
    expect(jobs.asked).toEqual(['a', 'a', 'a']);
    expect(jobs.get('nb')).toEqual({ id: 'a', done: true, polls: 3 });
    expect(changed).toEqual(['nb', 'nb', 'nb', 'nb']);
    jobs.dispose();
  });

  it('polls each notebook on its own, with a default interval of a second', async () => {
    const jobs = new Jobs();
    jobs.start('one', 'a');
    await tick(500);
    jobs.start('two', 'b');
    await tick(500);
    expect(jobs.asked).toEqual(['a']);
    await tick(500);
    expect(jobs.asked).toEqual(['a', 'b']);
    jobs.dispose();
  });

  it('forgets a notebook: back to idle, and no more polls', async () => {
    const jobs = new Jobs(100);
    jobs.start('nb', 'a');
    await tick(100);
    jobs.forget('nb');
    await tick(1000);
    expect(jobs.asked).toEqual(['a']);
    expect(jobs.get('nb')).toBe(IDLE);
    jobs.dispose();
  });

  it('stops everything once disposed, and changes nothing after', async () => {
    const jobs = new Jobs(100);
    jobs.start('nb', 'a');
    const changed = jest.fn();
    jobs.changed.connect(changed);
    jobs.dispose();
    expect(jobs.isDisposed).toBe(true);
    jobs.dispose();
    jobs.start('nb', 'b');
    await tick(1000);
    expect(jobs.asked).toEqual([]);
    expect(jobs.get('nb')).toBe(IDLE);
    expect(changed).not.toHaveBeenCalled();
  });
});

describe('isGone', () => {
  it('holds for a 404 only', () => {
    expect(isGone(new ApiError(404, 'not found'))).toBe(true);
    expect(isGone(new ApiError(500, 'boom'))).toBe(false);
    expect(isGone(new Error('network'))).toBe(false);
  });
});
