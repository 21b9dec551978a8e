/**
 * Bull Board over a Bullpen queue. The dashboard's own actions would go around Bullpen's bookkeeping (Bull's plain
 * `retry`, `remove` and `update` know nothing of de-duplication keys, the payload schema or the other windows), so on a
 * {@link TranscodeQueue} they go through it instead:
 * - retry: Bullpen's retry, which takes the de-duplication key again and is refused while the same file is queued as
 *   another job (a plain retry made two live jobs for one file);
 * - remove: Bullpen's remove, which releases the key and tells every window (they kept showing the job);
 * - edited data must pass the payload schema (a worker would refuse it anyway, after taking it);
 * - no job is added from the dashboard: a job needs its probe and its key (add files from the app or `bullpen add`);
 * - clean and empty also sweep the keys of the jobs they removed; obliterate deletes Bullpen's keys with Bull's.
 * Refusals carry an HTTP status, which the board shows with the message.
 */
import { BullAdapter } from '@bull-board/api/bullAdapter'
import { describeIssues, JobDataSchema } from '../../../shared/spec'
import { errorMessage } from '../errors'
import type { TranscodeQueue } from '../queue'

/** A job as BullAdapter hands it to the board: Bull's own job object. */
type BoardJob = NonNullable<Awaited<ReturnType<BullAdapter['getJob']>>>
type JobCleanStatus = Parameters<BullAdapter['clean']>[0]

/** An error the board answers with `status` and this message. */
function refused(status: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode: status })
}

export class BullpenBoardAdapter extends BullAdapter {
  constructor(private readonly transcodeQueue: TranscodeQueue) {
    super(transcodeQueue.bull)
  }

  override async getJob(id: string): Promise<BoardJob | undefined | null> {
    const job = await super.getJob(id)
    return job && this.routed(job)
  }

  override async getJobs(...args: Parameters<BullAdapter['getJobs']>): Promise<BoardJob[]> {
    return (await super.getJobs(...args)).map((job) => this.routed(job))
  }

  override addJob(): Promise<never> {
    return Promise.reject(
      refused(
        400,
        'jobs are not added from the dashboard: a job needs its probe and de-duplication key. ' +
          'Add files from the app or with `bullpen add`.',
      ),
    )
  }

  override async clean(status: JobCleanStatus, graceTimeMs: number): Promise<void> {
    await super.clean(status, graceTimeMs)
    await this.transcodeQueue.sweepDedupeKeys()
  }

  override async empty(): Promise<void> {
    await super.empty()
    await this.transcodeQueue.sweepDedupeKeys()
  }

  override obliterate(options: { force?: boolean } = {}): Promise<void> {
    return this.transcodeQueue.obliterate({ force: options.force === true })
  }

  /** The job with its retry, remove and update routed through Bullpen. */
  private routed(job: BoardJob): BoardJob {
    const id = String(job.id)
    const q = this.transcodeQueue
    const asRefusal = (err: unknown): never => {
      throw refused(409, errorMessage(err))
    }
    const plainUpdate = job.update.bind(job)
    Object.assign(job, {
      retry: () => q.retry(id).catch(asRefusal),
      remove: () => q.remove(id).catch(asRefusal),
      update: async (data: unknown) => {
        const parsed = JobDataSchema.safeParse(data)
        if (!parsed.success) throw refused(400, `job ${id}: ${describeIssues(parsed.error)}`)
        await plainUpdate(parsed.data)
      },
    })
    return job
  }
}
