// Who may write what a run's lifecycle owns. libs/runs/lifecycle.ts owns every write of `runs`,
// of a thread's status and values and of the ledger's outcome (cron_occurrences status, error,
// ended_at). The files below write some of it too, each for the reason given; nothing else may.
// test/ownership.test.ts reads this list and fails on a statement outside it (and on an entry
// whose file no longer writes what it names), so a new writer is either moved into the owner or
// named here with its reason, in review. As Oban keeps its engine: one interface, named exceptions.

/** What the owner owns: `runs` (any INSERT, UPDATE, DELETE), threads.status/values, the ledger's outcome. */
export type Owned = 'runs' | 'threads' | 'ledger';

export const LIFECYCLE_OWNER = 'libs/runs/lifecycle.ts';

export interface OwnershipExemption {
  /** Path from the repository root. */
  file: string;
  writes: readonly Owned[];
  why: string;
}

export const LIFECYCLE_EXEMPTIONS: readonly OwnershipExemption[] = [
  {
    file: 'bench/release-under-load.ts',
    writes: ['ledger'],
    why: 'a benchmark seeding a large ledger of settled occurrences in its own database before it measures a release',
  },
  {
    file: 'libs/runs/enqueue.ts',
    writes: ['runs'],
    why: 'creates runs (insertRuns for fireOccurrences, the API and triggers): the lifecycle starts at the row it inserts',
  },
  {
    file: 'libs/crons/retry.ts',
    writes: ['runs'],
    why:
      "a retry's new run: the same INSERT as enqueue.ts, written between the old run's delete and the ledger row's reopening, " +
      'its job queued last (insertRuns writes run and job together), in the transaction that holds the cron',
  },
  {
    file: 'libs/crons/fire.ts',
    writes: ['ledger'],
    why: "creates an occurrence's ledger row as enqueued or skipped: the outcome of firing, before any run exists",
  },
  {
    file: 'libs/threads/repository.ts',
    writes: ['threads'],
    why: 'creates a thread with its initial values (POST /threads with supersteps); no run has touched it yet',
  },
  {
    file: 'libs/runs/repository.ts',
    writes: ['runs'],
    why: 'DELETE /threads/{id}/runs/{id}: deletes a run only once it has ended (the owner is done with it)',
  },
  {
    file: 'libs/crons/tenancy.ts',
    writes: ['runs'],
    why: "an operator's transfer of crons moves runs.user_id only, never status, outcome or attempts",
  },
  {
    file: 'libs/assistants/assistants.ts',
    writes: ['runs'],
    why: 'reclaiming a default assistant moves runs.assistant_id only, never status, outcome or attempts',
  },
  {
    file: 'libs/webhooks/jobs.ts',
    writes: ['runs'],
    why: "a delivery's bookkeeping: runs.webhook_* only (and the ledger's webhook_*, not its outcome), in the owner's lock order",
  },
  {
    file: 'libs/maintenance/jobs/retention.ts',
    writes: ['runs'],
    why: 'retention deletes ended runs past RUN_RETENTION_DAYS; pending and running runs stay',
  },
];
