import { notMeasured, type BenchContext, type FigureResult } from '../lib/figure'

export function uiAtScale(_ctx: BenchContext): Promise<FigureResult> {
  return Promise.resolve(notMeasured(6, 'uiAtScale', '', 'not written yet'))
}
