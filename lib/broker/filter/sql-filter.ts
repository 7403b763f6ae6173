/**
 * The SQL92 filter: an expression parsed (sql-parser.ts) and compiled (sql-eval.ts) once, then
 * run against each message's tags and properties. It has no use for tag codes: the pre-check
 * lets every ConsumeQueue entry through and `matches` decides on the record.
 */
import type { MessageFilter } from './filter-types.js';
import { compileCondition, type Properties, type Test } from './sql-eval.js';
import { parseSql } from './sql-parser.js';

class SqlFilter implements MessageFilter {
  readonly type = 'SQL92';

  constructor(readonly expression: string, private readonly test: Test) {
    Object.freeze(this);
  }

  matchesTagsCode(_tagsCode: number): boolean {
    return true;
  }

  matches(tags: string | undefined, properties: Properties): boolean {
    return this.test(tags, properties) === true;
  }
}

/** Parse and compile a SQL92 expression; throws INVALID_FILTER saying where and what. */
export function compileSqlFilter(expression: unknown): MessageFilter {
  const condition = parseSql(expression);
  return new SqlFilter(expression as string, compileCondition(condition));
}
